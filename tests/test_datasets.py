"""lamina.datasets: the bundled digits, IDX parsing, and (Fashion-)MNIST lookup and download.

Downloads are tested against a local http.server on 127.0.0.1; no other network is used.
"""

import functools
import gzip
import hashlib
import http.server
import struct
import threading
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import lamina as lm

datasets = lm.datasets
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")  # fmt: skip
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


# --------------------------------------------------------------------------------------
# helpers: write IDX files, serve them over HTTP
# --------------------------------------------------------------------------------------

_TYPE_CODES = {"u1": 0x08, "i1": 0x09, ">i2": 0x0B, ">i4": 0x0C, ">f4": 0x0D, ">f8": 0x0E}


def idx_bytes(array, type_key="u1"):
    """IDX encoding of ``array``, written here independently of the reader under test."""
    header = bytes([0, 0, _TYPE_CODES[type_key], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.dtype(type_key)).tobytes()


def write_dataset(directory, n_train=6, n_test=4, compress=True, seed=0):
    """A tiny MNIST-shaped dataset; returns the arrays it wrote."""
    rng = np.random.default_rng(seed)
    arrays = {
        FILES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        FILES[1]: rng.integers(0, 10, n_train, dtype=np.uint8),
        FILES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        FILES[3]: rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        data = idx_bytes(array)
        if compress:
            (directory / name).write_bytes(gzip.compress(data))
        else:
            (directory / name[: -len(".gz")]).write_bytes(data)
    return arrays


def sha256_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("LAMINA_DATA_HOME", str(root))
    return root


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/served on 127.0.0.1; yields (base_url, served_dir, requested_paths)."""
    served = tmp_path / "served"
    served.mkdir()
    requested = []

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requested.append(self.path)

    handler = functools.partial(QuietHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/datasets/", served, requested
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def serve_dataset(served):
    arrays = write_dataset(served / "datasets")
    checksums = {name: sha256_of(served / "datasets" / name) for name in FILES}
    return arrays, checksums


def assert_same_dataset(loaded, arrays):
    (x_train, y_train), (x_test, y_test) = loaded
    for got, name in zip((x_train, y_train, x_test, y_test), FILES):
        np.testing.assert_array_equal(got, arrays[name])
        assert got.dtype == np.uint8


# --------------------------------------------------------------------------------------
# bundled digits
# --------------------------------------------------------------------------------------


def test_load_digits_returns_1797_float32_samples_of_64_pixels_and_int64_labels():
    x, y = datasets.load_digits()
    assert x.shape == (1797, 64) and x.dtype == np.float32 and x.flags.c_contiguous
    assert y.shape == (1797,) and y.dtype == np.int64
    assert x.min() == 0 and x.max() == 16 and np.array_equal(x, np.round(x))
    np.testing.assert_array_equal(np.unique(y), np.arange(10))
    np.testing.assert_array_equal(y[:10], np.arange(10))
    assert np.bincount(y).min() >= 174


def test_digits_file_and_its_attribution_ship_inside_the_package():
    data_dir = resources.files("lamina") / "_data"
    assert (data_dir / "digits.csv.gz").is_file()
    readme = (data_dir / "README.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in readme and "10.24432/C50P49" in readme


# --------------------------------------------------------------------------------------
# IDX parsing
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("type_key", sorted(_TYPE_CODES))
@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
def test_read_idx_round_trips_every_idx_value_type(tmp_path, type_key, compress):
    original = (np.arange(24).reshape(2, 3, 4) - 5).astype(np.dtype(type_key).newbyteorder("="))
    if type_key == "u1":
        original = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(original, type_key)
    path = tmp_path / "array.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    loaded = datasets.read_idx(path)
    np.testing.assert_array_equal(loaded, original)
    assert loaded.dtype == original.dtype and loaded.dtype.isnative
    assert loaded.flags.writeable


def test_read_idx_rejects_a_truncated_file_naming_it(tmp_path):
    path = tmp_path / "cut-images-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros((3, 28, 28), np.uint8))[:-100])
    with pytest.raises(ValueError, match=r"cut-images-idx3-ubyte is truncated: shape \(3, 28, 28\) needs 2352"):
        datasets.read_idx(path)


def test_read_idx_rejects_a_complete_gzip_stream_holding_a_truncated_idx_file(tmp_path):
    path = tmp_path / "short-inside.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((3, 28, 28), np.uint8))[:-100]))
    expected = r"short-inside\.gz is truncated: shape \(3, 28, 28\) needs 2352 data bytes, found 2252"
    with pytest.raises(ValueError, match=expected):
        datasets.read_idx(path)


def test_read_idx_rejects_a_truncated_gzip_file_naming_it(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(5000, dtype=np.uint8) % 7))[:-30])
    with pytest.raises(ValueError, match=r"cut\.gz is not a valid gzip file"):
        datasets.read_idx(path)


def test_read_idx_rejects_a_header_cut_short(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(ValueError, match="short is truncated: its header ends"):
        datasets.read_idx(path)


@pytest.mark.parametrize(
    "magic", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"\x00\x00\x08\x00", b"PK\x03\x04", b""]
)
def test_read_idx_rejects_a_wrong_magic_number_naming_the_file(tmp_path, magic):
    path = tmp_path / "not-idx.bin"
    path.write_bytes(magic + b"\x00\x00\x00\x01\x07")
    with pytest.raises(ValueError, match=r"not-idx\.bin is not an IDX file: bad magic number"):
        datasets.read_idx(path)


def test_read_idx_rejects_data_after_the_announced_shape(tmp_path):
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(np.zeros(4, np.uint8)) + b"\x00")
    with pytest.raises(ValueError, match="data continues past the 4 bytes"):
        datasets.read_idx(path)


def test_read_idx_rejects_a_header_announcing_more_data_than_the_file_can_hold(tmp_path):
    path = tmp_path / "huge.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", 60000, 60000, 60000)))
    with pytest.raises(ValueError, match=r"huge\.gz is truncated or corrupt"):
        datasets.read_idx(path)


def test_read_idx_rejects_a_gzip_file_with_a_corrupt_body(tmp_path):
    packed = bytearray(gzip.compress(idx_bytes(np.arange(4000, dtype=np.uint8) % 13)))
    packed[-6] ^= 0xFF  # inside the CRC-32 trailer
    path = tmp_path / "crc.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(ValueError, match=r"crc\.gz is not a valid gzip file"):
        datasets.read_idx(path)


# --------------------------------------------------------------------------------------
# finding local files
# --------------------------------------------------------------------------------------


def test_load_mnist_reads_gzipped_files_from_the_given_path(tmp_path, cache):
    arrays = write_dataset(tmp_path / "mnist")
    assert_same_dataset(datasets.load_mnist(tmp_path / "mnist", download=False), arrays)


def test_load_mnist_reads_already_unpacked_files(tmp_path, cache):
    arrays = write_dataset(tmp_path / "mnist", compress=False)
    assert_same_dataset(datasets.load_mnist(str(tmp_path / "mnist"), download=False), arrays)


def test_load_mnist_falls_back_to_the_cache_directory(cache):
    arrays = write_dataset(cache / "mnist")
    assert_same_dataset(datasets.load_mnist(download=False), arrays)


def test_load_fashion_mnist_prefers_the_given_path_over_system_files(tmp_path, cache):
    arrays = write_dataset(tmp_path / "fashion", n_train=3, n_test=2)
    assert_same_dataset(datasets.load_fashion_mnist(tmp_path / "fashion", download=False), arrays)


def test_load_mnist_without_download_reports_where_it_looked(cache):
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\.gz not found in .*cache.*download=False"):
        datasets.load_mnist(download=False)


def test_load_mnist_rejects_a_path_that_is_not_a_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"path must be a directory.*path='.*missing'"):
        datasets.load_mnist(tmp_path / "missing")


def test_load_mnist_rejects_image_and_label_files_of_different_lengths(tmp_path, cache):
    write_dataset(tmp_path / "m")
    (tmp_path / "m" / FILES[1]).write_bytes(gzip.compress(idx_bytes(np.zeros(5, np.uint8))))
    with pytest.raises(ValueError, match=r"has 6 images but .*train-labels-idx1-ubyte\.gz has 5 labels"):
        datasets.load_mnist(tmp_path / "m", download=False)


def test_data_home_honours_lamina_data_home(cache):
    assert datasets.data_home() == cache


def test_data_home_defaults_to_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("LAMINA_DATA_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert datasets.data_home() == tmp_path / "lamina" / "datasets"


# --------------------------------------------------------------------------------------
# downloading (local server only)
# --------------------------------------------------------------------------------------


def test_download_fetches_missing_files_into_the_cache_and_reuses_them(server, cache):
    base_url, served, requested = server
    arrays, checksums = serve_dataset(served)

    assert_same_dataset(datasets.load_mnist(base_url=base_url, checksums=checksums), arrays)
    assert sorted(requested) == sorted(f"/datasets/{name}" for name in FILES)
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(FILES)

    requested.clear()
    assert_same_dataset(datasets.load_mnist(base_url=base_url, checksums=checksums), arrays)
    assert requested == []  # served from the cache


def test_download_accepts_the_checksum_of_the_decompressed_idx_bytes(server, cache):
    base_url, served, _ = server
    arrays, _ = serve_dataset(served)
    payload_checksums = {name: hashlib.sha256(idx_bytes(arrays[name])).hexdigest() for name in FILES}
    assert_same_dataset(datasets.load_mnist(base_url=base_url, checksums=payload_checksums), arrays)


def test_download_with_a_checksum_mismatch_leaves_no_file_in_the_cache(server, cache):
    base_url, served, _ = server
    _, checksums = serve_dataset(served)
    checksums[FILES[0]] = "0" * 64
    with pytest.raises(ValueError, match=r"checksum mismatch for train-images-idx3-ubyte\.gz.*discarded"):
        datasets.load_mnist(base_url=base_url, checksums=checksums)
    assert list((cache / "mnist").iterdir()) == []


def test_download_of_a_missing_file_raises_oserror_and_leaves_no_file(server, cache):
    base_url, served, _ = server
    _, checksums = serve_dataset(served)
    (served / "datasets" / FILES[2]).unlink()
    with pytest.raises(OSError, match=r"could not download .*t10k-images-idx3-ubyte\.gz.*404"):
        datasets.load_mnist(base_url=base_url, checksums=checksums)
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(FILES[:2])


def test_checksums_override_must_name_every_file(cache):
    with pytest.raises(ValueError, match=r"checksums has no entry for 't10k-labels-idx1-ubyte\.gz'"):
        datasets.load_mnist(checksums={name: "0" * 64 for name in FILES[:3]})


def test_pinned_checksums_cover_all_four_files_of_both_datasets():
    for name in ("mnist", "fashion_mnist"):
        assert set(datasets.CHECKSUMS[name]) == set(FILES)
        for digests in datasets.CHECKSUMS[name].values():
            assert digests and all(len(d) == 64 and int(d, 16) >= 0 for d in digests)


# --------------------------------------------------------------------------------------
# the real Fashion-MNIST files from Debian's dataset-fashion-mnist package
# --------------------------------------------------------------------------------------

needs_debian_fashion = pytest.mark.skipif(
    not all((DEBIAN_FASHION / name).is_file() for name in FILES),
    reason="Debian's dataset-fashion-mnist files are not installed",
)


@needs_debian_fashion
def test_load_fashion_mnist_reads_the_real_debian_files_like_keras(cache):
    (x_train, y_train), (x_test, y_test) = datasets.load_fashion_mnist(download=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert x_train.dtype == y_train.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(y_train), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(y_test), np.full(10, 1000))
    assert datasets.FASHION_MNIST_CLASS_NAMES[y_train[0]] == "Ankle boot"
    assert x_train.max() == 255


@needs_debian_fashion
@pytest.mark.parametrize("name", FILES)
def test_debian_fashion_mnist_files_match_a_pinned_checksum(name):
    with gzip.open(DEBIAN_FASHION / name, "rb") as stream:
        payload_digest = hashlib.sha256(stream.read()).hexdigest()
    assert payload_digest in datasets.CHECKSUMS["fashion_mnist"][name]


def test_load_fashion_mnist_with_only_the_training_files_in_path_names_the_missing_ones(tmp_path, cache):
    """The test set is never taken from the system folder or the cache behind a given path."""
    write_dataset(tmp_path / "f")
    write_dataset(cache / "fashion_mnist")  # a complete copy elsewhere must not be mixed in
    for name in FILES[2:]:
        (tmp_path / "f" / name).unlink()
    with pytest.raises(FileNotFoundError) as info:
        datasets.load_fashion_mnist(tmp_path / "f")
    message = str(info.value)
    assert str(tmp_path / "f") in message and FILES[2] in message and FILES[3] in message
    assert FILES[0] not in message


def test_load_mnist_with_a_path_lacking_the_files_never_downloads(tmp_path, cache, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(datasets, "_download", lambda *a: pytest.fail("a download was attempted"))
    with pytest.raises(FileNotFoundError, match="lacks the mnist files train-images-idx3-ubyte.gz, "
                                                "train-labels-idx1-ubyte.gz, t10k-images"):
        datasets.load_mnist(tmp_path / "empty")
