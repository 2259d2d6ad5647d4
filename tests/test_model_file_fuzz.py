"""Fuzzing model files (hypothesis): whatever bytes a file holds, ``load_model`` returns a working
model or raises ``ValueError`` naming the file — never another exception, a crash, code execution
or a huge allocation — and a save killed half-way leaves the previous file loadable.

tests/test_io.py checks single bit flips, a few truncations and a list of hand-made
inconsistencies; here the damage is random and compound, and files are re-signed with a valid
checksum so the checks behind it are fuzzed too.
"""

import atexit
import io
import json
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lamina as lm
import lamina.io as lio

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
WORKDIR = pathlib.Path(tempfile.mkdtemp(prefix="lamina-fuzz-"))
atexit.register(shutil.rmtree, WORKDIR, ignore_errors=True)


def _saved_bytes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=40)
    model = lm.Sequential([lm.layers.Input(shape=(4,)),
                           lm.layers.Dense(6, activation="relu"),
                           lm.layers.Dropout(0.25),
                           lm.layers.Dense(3, activation="softmax", kernel_regularizer=lm.regularizers.L2(1e-3))],
                          seed=5)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.attach_standardizer(lm.data.Standardizer().fit(x))
    model.fit(x, y, epochs=1, verbose=0)
    path = WORKDIR / "good.lamina"
    model.save(path)
    return path.read_bytes()


GOOD = _saved_bytes()


def _content(raw):
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return json.loads(arrays.pop("header").tobytes()), arrays


GOOD_HEADER, GOOD_ARRAYS = _content(GOOD)


def _npy(arr, allow_pickle=False):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def _signed(header, arrays, pickled=()):
    """A file with a valid lamina checksum around arbitrary content."""
    head = header if isinstance(header, np.ndarray) else np.frombuffer(json.dumps(header).encode(), np.uint8)
    members = [("header", _npy(head, "header" in pickled))]
    members += [(name, _npy(arr, name in pickled)) for name, arr in arrays.items()]
    return lio._signed_archive(members)


_counter = iter(range(10**9))


def load_bytes(raw):
    """load_model on a file holding ``raw``; returns the model or the ValueError. Any other
    exception propagates (and fails the test)."""
    path = WORKDIR / f"f{next(_counter)}.lamina"
    path.write_bytes(raw)
    try:
        return lm.load_model(path)
    except ValueError as exc:
        assert str(path) in str(exc) or repr(str(path)) in str(exc), exc
        return exc
    finally:
        path.unlink()


def test_the_pristine_file_loads():
    model = load_bytes(GOOD)
    assert isinstance(model, lm.Sequential)


# ---------------------------------------------------------------------------------- raw damage
@st.composite
def damaged(draw):
    raw = bytearray(GOOD)
    for _ in range(draw(st.integers(1, 12))):
        op = draw(st.sampled_from(("flip", "set", "insert", "delete", "overwrite", "truncate", "append", "swap")))
        pos = draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == "flip" and raw:
            raw[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and raw:
            raw[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            raw[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del raw[pos:pos + draw(st.integers(1, 64))]
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=64))
            raw[pos:pos + len(chunk)] = chunk
        elif op == "truncate":
            del raw[pos:]
        elif op == "append":
            raw += draw(st.binary(min_size=1, max_size=64))
        elif op == "swap" and len(raw) > 256:
            other = draw(st.integers(0, len(raw) - 129))
            a, b = bytes(raw[pos:pos + 128]), bytes(raw[other:other + 128])
            if a != b:
                raw[pos:pos + len(b)], raw[other:other + len(a)] = b, a
    return bytes(raw)


@settings(max_examples=300, **SETTINGS)
@given(raw=damaged())
def test_randomly_damaged_files_are_refused(raw):
    if raw == GOOD:
        return
    assert isinstance(load_bytes(raw), ValueError)


@settings(max_examples=100, **SETTINGS)
@given(raw=st.one_of(st.binary(max_size=4096),
                     st.text(max_size=2000).map(lambda s: s.encode("utf-8")),
                     st.binary(max_size=512).map(lambda b: b"PK\x03\x04" + b),
                     st.binary(max_size=512).map(lambda b: b + GOOD[-78:]),  # a forged checksum trailer
                     st.binary(max_size=512).map(lambda b: b"\x93NUMPY" + b)))
def test_foreign_bytes_are_refused(raw):
    assert isinstance(load_bytes(raw), ValueError)


# ---------------------------------------------------------------------------------- re-signed content
_arrays = st.one_of(
    st.builds(lambda n, d: np.arange(n).astype(d), st.integers(0, 50),
              st.sampled_from(("uint8", "int32", "int64", "float16", "float32", "float64", "bool", "complex64"))),
    st.builds(lambda s: np.zeros(s, np.float32), st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)),
    st.text(max_size=10).map(lambda s: np.array([s])),
)


@settings(max_examples=100, **SETTINGS)
@given(arrays=st.dictionaries(st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12),
                              _arrays, max_size=5),
       signed=st.booleans())
def test_someone_elses_npz_is_refused_even_with_a_lamina_checksum(arrays, signed):
    if signed:
        raw = lio._signed_archive([(name, _npy(arr)) for name, arr in arrays.items()])
    else:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        raw = buf.getvalue()
    assert isinstance(load_bytes(raw), ValueError)


_json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 40), st.sampled_from((2**63, 2**64, -2**63, 10**30)),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from((1e308, -0.0, 5e-324)),
    st.text(max_size=12), st.sampled_from(("relu", "softmax", "Dense", "Dropout", "Input", "adam", "sgd",
                                           "mse", "accuracy", "lamina-model", "params", "__import__", "os.system")),
)
_json_value = st.recursive(_json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                               st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=8)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


ALL_PATHS = [p for p in _paths(GOOD_HEADER) if p]


@st.composite
def mutated_headers(draw):
    header = json.loads(json.dumps(GOOD_HEADER))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent = header
        try:
            for key in path[:-1]:
                parent = parent[key]
            old = parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(parent, (dict, list)):  # a path into a string: nothing to mutate there
            continue
        action = draw(st.sampled_from(("replace", "replace", "delete", "perturb")))
        if action == "delete":
            if isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent.pop(path[-1])
        elif action == "perturb" and isinstance(old, (int, float)) and not isinstance(old, bool):
            parent[path[-1]] = old + draw(st.sampled_from((-1, 1, 2, -old * 2 if old else 1)))
        else:
            parent[path[-1]] = draw(_json_value)
    return header


@settings(max_examples=400, **SETTINGS)
@given(header=mutated_headers(), drop=st.sets(st.sampled_from(sorted(GOOD_ARRAYS)), max_size=2))
def test_resigned_files_with_a_mutated_header_load_consistently_or_are_refused(header, drop):
    arrays = {k: v for k, v in GOOD_ARRAYS.items() if k not in drop}
    result = load_bytes(_signed(header, arrays))
    if isinstance(result, ValueError):
        return
    # Accepted: the model is whole and usable.
    x = np.random.default_rng(0).normal(size=(5, result.input_size))
    p = result.predict(x)
    assert p.shape == (5, result.output_size)
    assert sum(w.size for w in result.get_weights()) == result.count_params()


def _cast(a, dtype):
    with np.errstate(over="ignore"):
        return a.astype(dtype)


@settings(max_examples=150, **SETTINGS)
@given(name=st.sampled_from(sorted(GOOD_ARRAYS)),
       arr=st.one_of(_arrays,
                     st.builds(lambda n, d: _cast(np.full(n, 1e30), d), st.integers(0, 200),
                               st.sampled_from(("float16", "float32", "float64"))),
                     st.builds(lambda n: np.full(n, np.nan, np.float32), st.integers(1, 200)),
                     st.builds(lambda a: np.asfortranarray(a.reshape(-1, 1).repeat(2, 1)),
                               st.just(GOOD_ARRAYS["params"]))))
def test_resigned_files_with_a_replaced_array_are_refused_or_consistent(name, arr):
    arrays = dict(GOOD_ARRAYS, **{name: arr})
    result = load_bytes(_signed(GOOD_HEADER, arrays))
    if isinstance(result, ValueError):
        return
    assert np.isfinite(result.predict(np.zeros((2, 4)))).all()
    for w in result.get_weights():
        assert np.isfinite(w).all(), "non-finite weights were loaded"


# ---------------------------------------------------------------------------------- no code runs
MARKER = WORKDIR / "pwned"


class Exploit:
    def __reduce__(self):
        return (pathlib.Path.touch, (MARKER,))


@settings(max_examples=30, **SETTINGS)
@given(where=st.sampled_from(["header"] + sorted(GOOD_ARRAYS) + ["extra"]), fix_list=st.booleans())
def test_a_pickle_anywhere_in_the_file_is_never_unpickled(where, fix_list):
    header, arrays = json.loads(json.dumps(GOOD_HEADER)), dict(GOOD_ARRAYS)
    bomb = np.array([Exploit(), 1], dtype=object)
    if where == "header":
        header = bomb
    else:
        arrays[where] = bomb
        if fix_list and where == "extra":
            header["arrays"].append("extra")
    result = load_bytes(_signed(header, arrays, pickled=(where,)))
    assert isinstance(result, ValueError)
    assert not MARKER.exists(), "loading a model file executed code"


# ---------------------------------------------------------------------------------- huge declared sizes
PROBE = textwrap.dedent(r"""
    import resource, sys, json
    resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))  # a guard: never take the machine
    import lamina as lm
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        lm.load_model(sys.argv[1])
        outcome = "loaded"
    except ValueError as exc:
        outcome = "ValueError"
    except BaseException as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"outcome": outcome, "grew_mb": (after - before) / 1024}))
""")


def _probe(raw, tmp_path):
    path, script = tmp_path / "probe.lamina", tmp_path / "probe.py"
    path.write_bytes(raw)
    script.write_text(PROBE)
    proc = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"the loader process died (rc {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("units", [10**12, 2 * 10**8, 2**62])
def test_a_tiny_file_declaring_a_huge_network_is_refused_without_allocating_it(units, tmp_path):
    header = json.loads(json.dumps(GOOD_HEADER))
    header["config"]["layers"][1]["config"]["units"] = units
    out = _probe(_signed(header, GOOD_ARRAYS), tmp_path)
    assert out["outcome"] == "ValueError", out
    assert out["grew_mb"] < 100, out


def test_a_compressed_member_that_inflates_far_beyond_the_file_is_refused_without_inflating_it(tmp_path):
    """A zip bomb: ~0.5 MB on disk, 400 MB once inflated, behind a valid checksum."""
    header = json.loads(json.dumps(GOOD_HEADER))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(zipfile.ZipInfo("header.npy"), _npy(np.frombuffer(json.dumps(header).encode(), np.uint8)))
        for name, arr in GOOD_ARRAYS.items():
            if name != "params":
                zf.writestr(zipfile.ZipInfo(name + ".npy"), _npy(arr))
        info = zipfile.ZipInfo("params.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        n = 100 * 2**20  # float32 zeros: 400 MB
        head = io.BytesIO()
        np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False, "shape": (n,)})
        with zf.open(info, "w", force_zip64=True) as member:
            member.write(head.getvalue())
            zeros = bytes(2**22)
            for _ in range(n * 4 // len(zeros)):
                member.write(zeros)
        zf.comment = lio._SIGNATURE + b"0" * 64
    raw = bytearray(buf.getvalue())
    raw[-64:] = __import__("hashlib").sha256(bytes(raw[:-64])).hexdigest().encode()
    assert len(raw) < 2 * 2**20
    out = _probe(bytes(raw), tmp_path)
    assert out["outcome"] == "ValueError", out
    assert out["grew_mb"] < 100, f"a {len(raw) / 2**20:.1f} MB file made load_model take {out['grew_mb']:.0f} MB more"


# ---------------------------------------------------------------------------------- killed saves
SAVER = textwrap.dedent(r"""
    import sys
    import numpy as np
    import lamina as lm
    path, start = sys.argv[1], int(sys.argv[2])
    model = lm.Sequential([lm.layers.Dense(1024, input_shape=(1024,)), lm.layers.Dense(1024)], seed=0)
    shapes = [w.shape for w in model.get_weights()]
    for k in range(start, start + 10**6):
        model.set_weights([np.full(s, float(k), np.float32) for s in shapes])
        print(k, flush=True)
        model.save(path)
""")


def test_a_save_killed_at_random_moments_leaves_a_loadable_previous_file(tmp_path):
    path, script = tmp_path / "m.lamina", tmp_path / "saver.py"
    script.write_text(SAVER)
    rng = np.random.default_rng(0)
    last_complete = None
    for round_ in range(6):
        start = 1000 * (round_ + 1)
        proc = subprocess.Popen([sys.executable, str(script), str(path), str(start)], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == str(start)
            time.sleep(rng.uniform(0.05, 0.6))
            proc.send_signal(signal.SIGKILL)
            printed = proc.stdout.read().split()
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
        started = [start] + [int(k) for k in printed]
        if not path.exists():
            assert last_complete is None  # killed before the very first save completed
            continue
        model = lm.load_model(path)
        values = {float(v) for w in model.get_weights() for v in np.unique(w)}
        assert len(values) == 1, "a file mixing two saves was left behind"
        k = int(values.pop())
        # Either a save completed in this round (one the child had started), or the previous file.
        assert k in started or k == last_complete, (k, started[:3], started[-3:], last_complete)
        last_complete = k
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) <= 6  # a killed writer may leave its temporary file, never a damaged target
