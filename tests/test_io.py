"""Model files: exact round trips, bitwise-identical resumed training, refusal of damaged or
foreign files, atomic writes."""

import io
import json
import os
import pathlib
import zipfile

import numpy as np
import pytest

import lamina as lm
import lamina.io as lio
from lamina import load_model, save_model


def data(n=96, features=4, outputs=3, seed=0, classes=False):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, features)) * 5 + 3).astype(np.float32)
    if classes:
        return x, rng.integers(0, outputs, size=n)
    return x, rng.normal(size=(n, outputs)).astype(np.float32)


def model_with_dropout(seed=3, optimizer="adam", dtype="float32"):
    model = lm.Sequential([lm.layers.Input(shape=(4,)),
                           lm.layers.Dense(16, activation="relu", name="hidden"),
                           lm.layers.Dropout(0.3),
                           lm.layers.Dense(8, activation="tanh", kernel_regularizer=lm.regularizers.L2(1e-3)),
                           lm.layers.Dense(3, activation="softmax")], seed=seed, dtype=dtype)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy", "f1"])
    return model


def assert_same_state(a, b):
    sa, sb = a.get_state(), b.get_state()
    np.testing.assert_array_equal(sa["params"], sb["params"])
    assert len(sa["optimizer_slots"]) == len(sb["optimizer_slots"])
    for x, y in zip(sa["optimizer_slots"], sb["optimizer_slots"]):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)
    for key in ("iterations", "steps", "epochs_trained"):
        assert sa[key] == sb[key], key


# ---------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_gives_identical_predictions_and_optimizer_state(tmp_path, dtype):
    x, y = data(classes=True)
    model = model_with_dropout(dtype=dtype)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    path = tmp_path / "model.lamina"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.dtype == dtype
    assert_same_state(model, loaded)
    assert loaded.get_config() == model.get_config()
    assert loaded.compile_config() == model.compile_config()
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    assert loaded.evaluate(x, y, return_dict=True) == model.evaluate(x, y, return_dict=True)


@pytest.mark.parametrize("optimizer", [
    lm.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
    lm.optimizers.RMSprop(centered=True, momentum=0.5, clipnorm=1.0),
    lm.optimizers.Adagrad(learning_rate=0.05),
    lm.optimizers.Adam(amsgrad=True, global_clipnorm=2.0),
    lm.optimizers.AdamW(weight_decay=0.01, clipvalue=0.5),
])
def test_every_optimizer_resumes_bitwise(tmp_path, optimizer):
    """Saved after epoch 2 of 4 and loaded, training continues to exactly the same weights and
    optimizer state as 4 epochs uninterrupted (dropout masks and shuffles included)."""
    x, y = data(classes=True)
    config = optimizer.get_config()
    fresh = lambda: lm.optimizers.get(dict(config))

    straight = model_with_dropout(optimizer=fresh())
    straight.fit(x, y, epochs=4, batch_size=10, verbose=0)

    first = model_with_dropout(optimizer=fresh())
    first.fit(x, y, epochs=2, batch_size=10, verbose=0)
    first.save(tmp_path / "half.lamina")
    del first
    resumed = load_model(tmp_path / "half.lamina")
    assert resumed.epochs_trained == 2
    history = resumed.fit(x, y, epochs=4, initial_epoch=2, batch_size=10, verbose=0)
    assert history.epoch == [2, 3]
    assert_same_state(straight, resumed)
    assert resumed.optimizer.get_config() == straight.optimizer.get_config()


def test_resume_with_validation_and_fit_counting_from_zero(tmp_path):
    """fit(epochs=2) on the loaded model (epochs count from 0 in each call) gives the same weights:
    shuffles follow model.epochs_trained, dropout masks the core's step counter."""
    x, y = data(classes=True)
    straight = model_with_dropout()
    h_straight = straight.fit(x, y, epochs=4, batch_size=8, verbose=0, validation_split=0.25)
    first = model_with_dropout()
    first.fit(x, y, epochs=2, batch_size=8, verbose=0, validation_split=0.25)
    save_model(first, str(tmp_path / "m"))
    resumed = load_model(str(tmp_path / "m"))
    h_resumed = resumed.fit(x, y, epochs=2, batch_size=8, verbose=0, validation_split=0.25)
    assert_same_state(straight, resumed)
    assert h_resumed.history["val_loss"] == h_straight.history["val_loss"][2:]


def test_learning_rate_changed_during_training_is_saved(tmp_path):
    x, y = data(classes=True)
    model = model_with_dropout()
    model.fit(x, y, epochs=2, verbose=0,
              callbacks=[lm.callbacks.LearningRateScheduler(lambda epoch, lr: 0.0123)])
    model.save(tmp_path / "m.lamina")
    loaded = load_model(tmp_path / "m.lamina")
    assert loaded.optimizer.learning_rate == 0.0123
    assert loaded._net.learning_rate == pytest.approx(0.0123)


def test_uncompiled_model_round_trip(tmp_path):
    model = lm.Sequential([lm.layers.Dense(5, activation="sigmoid", input_shape=(4,)), lm.layers.Dense(2)], seed=9)
    model.build()
    model.save(tmp_path / "plain.lamina")
    loaded = load_model(tmp_path / "plain.lamina")
    assert loaded.compile_config() is None and loaded.loss is None
    x, _ = data()
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    loaded.compile("sgd", "mse")  # can be compiled and trained afterwards
    loaded.fit(x, np.zeros((len(x), 2)), epochs=1, verbose=0)


def test_unbuilt_model_cannot_be_saved(tmp_path):
    model = lm.Sequential([lm.layers.Dense(2)])
    with pytest.raises(ValueError, match="built"):
        model.save(tmp_path / "m.lamina")
    assert list(tmp_path.iterdir()) == []


def test_get_config_from_config_round_trip():
    model = model_with_dropout()
    rebuilt = lm.Sequential.from_config(json.loads(json.dumps(model.get_config())))
    assert rebuilt.get_config() == model.get_config()
    assert rebuilt.built and rebuilt.count_params() == model.count_params()
    # Same seed, same initial weights.
    model.build()
    for a, b in zip(model.get_weights(), rebuilt.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_standardizer_is_saved_and_reapplied(tmp_path):
    x, y = data()
    scaler = lm.data.Standardizer(epsilon=1e-5).fit(x)
    model = lm.Sequential([lm.layers.Dense(6, activation="relu", input_shape=(4,)), lm.layers.Dense(3)], seed=1)
    model.compile("adam", "mse")
    model.attach_standardizer(scaler)
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.lamina")
    loaded = load_model(tmp_path / "m.lamina")
    assert loaded.standardizer is not None and loaded.standardizer is not scaler
    assert loaded.standardizer.epsilon == 1e-5
    np.testing.assert_array_equal(loaded.standardizer.mean_, scaler.mean_)
    np.testing.assert_array_equal(loaded.standardizer.scale_, scaler.scale_)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))  # raw inputs in
    loaded.attach_standardizer(None)
    assert not np.array_equal(loaded.predict(x), model.predict(x))  # it really was applied


# ---------------------------------------------------------------------------------- paths
def test_path_is_used_exactly_as_given(tmp_path):
    model = model_with_dropout()
    model.build()
    for name in ("model.keras", "no_extension", "weights.npz"):
        model.save(tmp_path / name)
        model.save(str(tmp_path / name))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras", "no_extension", "weights.npz"]
    # A plain .npz: numpy reads it without pickle.
    with np.load(tmp_path / "model.keras", allow_pickle=False) as npz:
        assert "header" in npz.files and "params" in npz.files
        header = json.loads(npz["header"].tobytes())
    assert header["format"] == "lamina-model" and header["version"] == lio.VERSION


def test_bad_paths(tmp_path):
    model = model_with_dropout()
    model.build()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.save(tmp_path / "missing_dir" / "m.lamina")
    with pytest.raises(IsADirectoryError):
        model.save(tmp_path)
    with pytest.raises(TypeError, match="path"):
        model.save(3)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nothing.lamina")


# ---------------------------------------------------------------------------------- damaged files
@pytest.fixture
def saved(tmp_path):
    x, y = data(classes=True)
    model = model_with_dropout()
    model.attach_standardizer(lm.data.Standardizer().fit(x))
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "m.lamina"
    model.save(path)
    return path


def test_truncated_files_are_refused(saved):
    raw = saved.read_bytes()
    for size in sorted({0, 1, 4, 30, len(raw) // 3, len(raw) // 2, len(raw) - 100, len(raw) - 64, len(raw) - 1}):
        saved.write_bytes(raw[:size])
        with pytest.raises(ValueError, match=r"cannot load the model from '.*m\.lamina'"):
            load_model(saved)


def test_every_single_bit_flip_is_refused(saved):
    raw = saved.read_bytes()
    positions = np.unique(np.linspace(0, len(raw) - 1, 200).astype(int))
    for i, pos in enumerate(positions):
        damaged = bytearray(raw)
        damaged[pos] ^= 1 << (i % 8)
        saved.write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match="cannot load the model"):
            load_model(saved)


@pytest.mark.parametrize("content", [
    b"hello, I am a text file\n",
    b"",
    b"PK\x03\x04 garbage",
    "a = 1\n".encode() * 1000,
])
def test_foreign_files_are_refused(tmp_path, content):
    path = tmp_path / "foreign.lamina"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="foreign.lamina"):
        load_model(path)


def test_other_npz_and_npy_files_are_refused(tmp_path):
    np.savez(tmp_path / "random.npz", a=np.arange(5), header=np.arange(3))
    np.save(tmp_path / "array.npy", np.arange(5))
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as zf:
        zf.writestr("readme.txt", "hi")
    for name in ("random.npz", "array.npy", "plain.zip"):
        with pytest.raises(ValueError, match=f"cannot load the model from .*{name}.*not"):
            load_model(tmp_path / name)


def signed_file(path, header, arrays, pickled=()):
    """Writes a correctly checksummed archive with arbitrary content (what a hostile or buggy
    writer could produce), to test the checks behind the checksum."""
    members = []
    for name, arr in [("header", np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))] + list(arrays):
        buf = io.BytesIO()
        np.lib.format.write_array(buf, arr, allow_pickle=name in pickled)
        members.append((name, buf.getvalue()))
    pathlib.Path(path).write_bytes(lio._signed_archive(members))


def good_content(path):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays.pop("header").tobytes())
    return header, arrays


def test_a_file_with_a_newer_version_names_it(saved):
    header, arrays = good_content(saved)
    header["version"] = lio.VERSION + 1
    signed_file(saved, header, arrays.items())
    with pytest.raises(ValueError, match=f"format version {lio.VERSION + 1}.*upgrade lamina"):
        load_model(saved)


def test_pickled_arrays_are_never_unpickled(saved, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (pathlib.Path.touch, (marker,))

    header, arrays = good_content(saved)
    arrays["params"] = np.array([Exploit()], dtype=object)
    signed_file(saved, header, arrays.items(), pickled=("params",))
    with pytest.raises(ValueError, match="cannot load the model"):
        load_model(saved)
    assert not marker.exists()


@pytest.mark.parametrize("damage", [
    lambda h, a: h.update(format="something-else"),
    lambda h, a: h.update(version="1"),
    lambda h, a: h["config"]["layers"][1].update(class_name="Lambda"),
    lambda h, a: h["config"]["layers"][1]["config"].update(units=17),
    lambda h, a: h["compile_config"]["optimizer"].update(name="os.system"),
    lambda h, a: h["compile_config"]["optimizer"].update(learning_rate=-1),
    lambda h, a: h["compile_config"]["loss"].update(reduction="sum"),
    lambda h, a: h["compile_config"]["metrics"][0].update(class_name="eval"),
    lambda h, a: h["training"].update(optimizer_slots=99),
    lambda h, a: h.pop("training"),
    lambda h, a: h["arrays"].append("extra"),
    lambda h, a: a.update(params=a["params"][:-1]),
    lambda h, a: a.update(params=a["params"].astype(np.float64)),
    lambda h, a: a.update(optimizer_slot_0=a["optimizer_slot_0"][:3]),
    lambda h, a: a.update(standardizer_scale=-a["standardizer_scale"]),
    lambda h, a: a.update(standardizer_mean=a["standardizer_mean"][:2]),
    lambda h, a: a.update(params=np.array(["x"] * a["params"].size)),
])
def test_inconsistent_content_is_refused(saved, damage):
    header, arrays = good_content(saved)
    damage(header, arrays)
    signed_file(saved, header, arrays.items())
    with pytest.raises(ValueError, match="cannot load the model from"):
        load_model(saved)


# ---------------------------------------------------------------------------------- atomic writes
def test_interrupted_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    x, y = data(classes=True)
    model = model_with_dropout()
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "m.lamina"
    model.save(path)
    before = path.read_bytes()
    model.fit(x, y, epochs=1, verbose=0)  # the next save would differ

    real_fdopen = os.fdopen

    class DiskFull:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, b):
            self.f.write(b[: len(b) // 2])  # half the bytes reach the disk, then the disk is full
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(lio.os, "fdopen", lambda fd, mode: DiskFull(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space"):
        model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.lamina"]  # temp file removed

    def no_fsync(fd):
        raise KeyboardInterrupt  # Ctrl-C at the worst moment

    monkeypatch.setattr(lio.os, "fsync", no_fsync)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.lamina"]
    load_model(path)
    model.save(path)  # and a normal save still replaces it
    assert path.read_bytes() != before
    np.testing.assert_array_equal(load_model(path).predict(x), model.predict(x))


def test_saved_file_permissions_follow_the_umask(tmp_path):
    model = model_with_dropout()
    model.build()
    old = os.umask(0o022)
    try:
        model.save(tmp_path / "m.lamina")
    finally:
        os.umask(old)
    assert (tmp_path / "m.lamina").stat().st_mode & 0o777 == 0o644


# ---------------------------------------------------------------------------------- loader limits
def deep_model(n_layers, width=2):
    return lm.Sequential([lm.layers.Input(shape=(width,))] + [lm.layers.Dense(width) for _ in range(n_layers - 1)],
                         seed=0)


def header_only_file(path, layers, params=0):
    """A signed file whose header declares ``layers``; its arrays are placeholders (a limit must
    refuse it before they are looked at)."""
    header = {"format": "lamina-model", "version": 1, "config": {"name": "s", "seed": 0, "dtype": "float32",
                                                                 "layers": layers},
              "compile_config": None, "standardizer": None, "arrays": ["params"],
              "training": {"iterations": 0, "steps": 0, "epochs_trained": 0, "optimizer_slots": 0}}
    signed_file(path, header, [("params", np.zeros(params, np.float32))])


def dense(units, **extra):
    return {"class_name": "Dense", "config": dict(units=units, **extra)}


@pytest.fixture
def no_array_is_read(monkeypatch):
    """Fails the test if load_model reads any array but the header, or starts building a model."""
    real = lio.Archive.array

    def header_only(self, name):
        assert name == "header", f"load_model read the array {name!r} before refusing the file"
        return real(self, name)

    monkeypatch.setattr(lio.Archive, "array", header_only)
    monkeypatch.setattr(lm.Sequential, "from_config", classmethod(lambda cls, c: pytest.fail("a model was built")))


@pytest.mark.parametrize("layers, kwargs, limit", [
    ([{"class_name": "Input", "config": {"shape": [2]}}] + [dense(2)] * 1024, {}, "max_layers=1024"),
    ([{"class_name": "Input", "config": {"shape": [2]}}] + [dense(2)] * 10, {"max_layers": 10}, "max_layers=10"),
    ([{"class_name": "Input", "config": {"shape": [1]}}, dense(2**20 + 1)], {}, "max_units=1048576"),
    ([{"class_name": "Input", "config": {"shape": [2**20 + 1]}}, dense(1)], {}, "max_units=1048576"),
    ([{"class_name": "Input", "config": {"shape": [64]}}, dense(64)], {"max_units": 63}, "max_units=63"),
    ([{"class_name": "Input", "config": {"shape": [2**20]}}] + [dense(2**20)] * 2, {}, "max_params=268435456"),
    ([{"class_name": "Input", "config": {"shape": [10]}}, dense(10)], {"max_params": 109}, "max_params=109"),
])
def test_a_file_over_a_loader_limit_is_refused_naming_it_before_any_array_is_read(tmp_path, no_array_is_read,
                                                                                  layers, kwargs, limit):
    path = tmp_path / "crafted.lamina"
    header_only_file(path, layers)
    with pytest.raises(ValueError, match=rf"crafted\.lamina.*over the limit {limit}"):
        load_model(path, **kwargs)


def test_a_file_at_the_loader_limits_loads(tmp_path):
    model = deep_model(20, width=5)  # 20 entries, widths 5, 19 * 30 = 570 weights
    model.save(tmp_path / "m.lamina")
    loaded = load_model(tmp_path / "m.lamina", max_layers=20, max_units=5, max_params=570)
    assert loaded.count_params() == 570
    with pytest.raises(ValueError, match="max_params=569"):
        load_model(tmp_path / "m.lamina", max_layers=20, max_units=5, max_params=569)


@pytest.mark.parametrize("name", ["max_layers", "max_units", "max_params"])
def test_loader_limits_must_be_positive_integers(tmp_path, name):
    with pytest.raises(ValueError, match=f"{name}=0"):
        load_model(tmp_path / "whatever.lamina", **{name: 0})


def test_a_deeply_nested_header_is_refused_as_a_value_error(tmp_path):
    members = [("header", lio_npy(np.frombuffer(b"[" * 200_000, np.uint8)))]
    (tmp_path / "deep.lamina").write_bytes(lio._signed_archive(members))
    with pytest.raises(ValueError, match="deep.lamina.*not valid JSON"):
        load_model(tmp_path / "deep.lamina")


def lio_npy(arr):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


# ---------------------------------------------------------------------------------- streaming save
def test_saving_and_loading_a_40_mb_model_take_about_one_copy_of_its_weights_in_memory(tmp_path):
    import tracemalloc

    model = lm.Sequential([lm.layers.Dense(1000, input_shape=(10_000,))], seed=0)  # 10,001,000 float32
    model.compile("sgd", "mse")
    weights = model.count_params() * 4
    tracemalloc.start()
    try:
        model.save(tmp_path / "big.lamina")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # model.get_state() copies the weights once; the archive itself is streamed from that copy.
    assert peak < 1.25 * weights, f"save peaked at {peak / 2**20:.0f} MB for {weights / 2**20:.0f} MB of weights"
    tracemalloc.start()
    try:
        loaded = load_model(tmp_path / "big.lamina")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Each array is read into its own memory, a block at a time: no copy of the file is held.
    assert peak < 1.25 * weights, f"load peaked at {peak / 2**20:.0f} MB for {weights / 2**20:.0f} MB of weights"
    np.testing.assert_array_equal(loaded.get_weights()[1], model.get_weights()[1])


# ---------------------------------------------------------------------------------- saving over a path
def small_model():
    model = lm.Sequential([lm.layers.Dense(2, input_shape=(3,))], seed=0)
    model.build()
    return model


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o444 | 0o200, 0o664])
def test_saving_over_a_file_keeps_its_mode(tmp_path, mode):
    path = tmp_path / "m.lamina"
    path.write_bytes(b"old")
    os.chmod(path, mode)
    old = os.umask(0o022)
    try:
        small_model().save(path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o7777 == mode
    load_model(path)


def test_saving_over_a_private_file_never_widens_it_even_while_writing(tmp_path, monkeypatch):
    path = tmp_path / "m.lamina"
    path.write_bytes(b"old")
    os.chmod(path, 0o600)
    modes = []
    real = lio._write_archive

    def spy(f, header, arrays):
        modes.append(os.fstat(f.fileno()).st_mode & 0o777)
        real(f, header, arrays)

    monkeypatch.setattr(lio, "_write_archive", spy)
    old = os.umask(0)
    try:
        small_model().save(path)
    finally:
        os.umask(old)
    assert modes == [0o600] and path.stat().st_mode & 0o777 == 0o600


def test_a_new_file_gets_0666_filtered_by_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        small_model().save(tmp_path / "new.lamina")
    finally:
        os.umask(old)
    assert (tmp_path / "new.lamina").stat().st_mode & 0o777 == 0o640


def test_saving_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "links").mkdir()
    target = tmp_path / "store" / "real.lamina"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    link = tmp_path / "links" / "m.lamina"
    link.symlink_to(os.path.relpath(target, link.parent))
    model = small_model()
    model.save(link)
    assert link.is_symlink() and os.readlink(link) == os.path.relpath(target, link.parent)
    assert target.stat().st_mode & 0o777 == 0o600
    np.testing.assert_array_equal(load_model(target).get_weights()[0], model.get_weights()[0])
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["real.lamina"]  # the temp was renamed
    assert sorted(p.name for p in (tmp_path / "links").iterdir()) == ["m.lamina"]


def test_saving_through_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "m.lamina"
    link.symlink_to("later.lamina")
    small_model().save(link)
    assert link.is_symlink() and (tmp_path / "later.lamina").is_file()
    load_model(link)


def test_a_permission_error_names_the_callers_path_not_the_temporary_file(tmp_path, monkeypatch):
    real_open = os.open

    def denied(name, *args, **kwargs):
        if str(name).endswith(".tmp"):
            raise PermissionError(13, "Permission denied", name)
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(lio.os, "open", denied)
    path = tmp_path / "m.lamina"
    with pytest.raises(PermissionError) as info:
        small_model().save(path)
    assert str(path) in str(info.value) and ".tmp" not in str(info.value)


def test_a_file_the_caller_cannot_write_is_not_replaced(tmp_path, monkeypatch):
    """The directory may be writable (then a rename could replace anyone's file): a save acts like
    open(path, "w") and refuses a file it cannot write."""
    path = tmp_path / "theirs.lamina"
    path.write_bytes(b"someone else's")
    monkeypatch.setattr(lio.os, "access", lambda p, mode: not os.path.samefile(p, path))
    with pytest.raises(PermissionError, match="theirs.lamina.*not writable"):
        small_model().save(path)
    assert path.read_bytes() == b"someone else's"


def test_a_file_at_the_default_layer_limit_loads_with_every_layer(tmp_path):
    model = deep_model(1024, width=2)  # Input + 1023 Dense: the default max_layers, built once
    model.save(tmp_path / "deep.lamina")
    loaded = load_model(tmp_path / "deep.lamina")
    assert len(loaded.layers) == 1023
    np.testing.assert_array_equal(loaded.get_weights()[-1], model.get_weights()[-1])
