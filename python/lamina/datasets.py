"""Ready-to-use datasets: a small one bundled with lamina, and (Fashion-)MNIST from IDX files.

>>> import lamina as lm
>>> x, y = lm.datasets.load_digits()                      # offline, ships with lamina
>>> (x_train, y_train), (x_test, y_test) = lm.datasets.load_fashion_mnist()  # doctest: +SKIP

Where the (Fashion-)MNIST loaders look for the four IDX files, in order:

1. the directory passed as ``path``: then only there, all four files or a
   ``FileNotFoundError`` naming the missing ones (no other folder, no download);
2. for Fashion-MNIST, Debian's ``/usr/share/datasets/fashion-mnist`` (package
   ``dataset-fashion-mnist``);
3. the cache, ``$LAMINA_DATA_HOME/<name>`` or else ``~/.cache/lamina/datasets/<name>``
   (``$XDG_CACHE_HOME`` is honoured);
4. otherwise the file is downloaded from ``base_url`` into the cache and checked
   against pinned SHA-256 digests before it is kept.

Each file may be gzip-compressed (``*.gz``) or already unpacked (the same name without
``.gz``).

Checksums: a download is accepted when the SHA-256 of the ``.gz`` file, or of the IDX
bytes inside it, is one of the digests pinned in ``CHECKSUMS``. Digests of the IDX bytes
do not depend on how a mirror compressed the file. The MNIST ``.gz`` digests are the
published ones for the files on ``MNIST_BASE_URL`` (torchvision, TensorFlow Datasets).
For Fashion-MNIST both are pinned: the published ``.gz`` digests for the official files,
and digests of the IDX bytes computed from Debian's copy (whose ``.gz`` files differ from
the official ones only in the gzip header: they omit the stored file name).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import struct
import sys
import tempfile
import urllib.request
import zlib
from importlib import resources
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from lamina._streams import fill as _fill

__all__ = [
    "load_digits",
    "load_mnist",
    "load_fashion_mnist",
    "read_idx",
    "data_home",
    "MNIST_BASE_URL",
    "FASHION_MNIST_BASE_URL",
    "FASHION_MNIST_CLASS_NAMES",
    "CHECKSUMS",
]

MNIST_BASE_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
FASHION_MNIST_BASE_URL = "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"

FASHION_MNIST_CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
_IDX_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# Accepted SHA-256 digests per file: of the .gz file, or of the IDX bytes inside it.
CHECKSUMS: Dict[str, Dict[str, Tuple[str, ...]]] = {
    "mnist": {
        TRAIN_IMAGES: ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",),
        TRAIN_LABELS: ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",),
        TEST_IMAGES: ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",),
        TEST_LABELS: ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",),
    },
    "fashion_mnist": {
        TRAIN_IMAGES: (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",  # .gz (official)
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",  # IDX bytes
        ),
        TRAIN_LABELS: (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        TEST_IMAGES: (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        TEST_LABELS: (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    },
}

# Directories where an operating-system package installs a dataset.
SYSTEM_DIRS: Dict[str, Tuple[str, ...]] = {
    "mnist": (),
    "fashion_mnist": ("/usr/share/datasets/fashion-mnist",),
}

_DOWNLOAD_TIMEOUT_SECONDS = 60
_CHUNK = 1 << 20

PathLike = Union[str, "os.PathLike[str]"]
Split = Tuple[np.ndarray, np.ndarray]


# --------------------------------------------------------------------------------------
# bundled: UCI optical digits
# --------------------------------------------------------------------------------------


def load_digits() -> Tuple[np.ndarray, np.ndarray]:
    """The UCI 8×8 handwritten digits bundled with lamina: ``x`` (1797, 64), ``y`` (1797,).

    ``x`` is float32 with pixel counts 0..16; ``y`` is int64 digits 0..9. No network needed.
    Source and license (CC BY 4.0): ``lamina/_data/README.md``.

    >>> x, y = load_digits()
    >>> x.shape, y[:5]
    ((1797, 64), array([0, 1, 2, 3, 4]))
    """
    source = resources.files(__package__ or "lamina") / "_data" / "digits.csv.gz"
    with source.open("rb") as raw, gzip.open(raw, "rt", encoding="ascii") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.float32)
    if table.shape != (1797, 65):
        raise ValueError(f"bundled digits.csv.gz is damaged: expected 1797 rows of 65 values, "
                         f"found shape {table.shape}")  # fmt: skip
    return np.ascontiguousarray(table[:, :64]), table[:, 64].astype(np.int64)


# --------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST
# --------------------------------------------------------------------------------------


def load_mnist(
    path: Optional[PathLike] = None,
    *,
    base_url: str = MNIST_BASE_URL,
    checksums: Optional[Mapping[str, Union[str, Sequence[str]]]] = None,
    download: bool = True,
) -> Tuple[Split, Split]:
    """MNIST handwritten digits as ``((x_train, y_train), (x_test, y_test))``, like Keras.

    Images are uint8 ``(n, 28, 28)``, labels uint8 ``(n,)``: 60000 training and 10000 test
    samples. See the module docstring for where the files are looked for; ``base_url``
    and ``checksums`` (file name -> SHA-256 hex digest(s)) override the download source;
    ``download=False`` never touches the network.

    >>> (x_train, y_train), (x_test, y_test) = load_mnist("~/mnist")  # doctest: +SKIP
    >>> x = x_train.reshape(len(x_train), -1).astype("float32") / 255  # doctest: +SKIP
    """
    return _load_idx_dataset("mnist", path, base_url, checksums, download)


def load_fashion_mnist(
    path: Optional[PathLike] = None,
    *,
    base_url: str = FASHION_MNIST_BASE_URL,
    checksums: Optional[Mapping[str, Union[str, Sequence[str]]]] = None,
    download: bool = True,
) -> Tuple[Split, Split]:
    """Fashion-MNIST (Zalando, MIT license) as ``((x_train, y_train), (x_test, y_test))``.

    Same format and arguments as :func:`load_mnist`; class names are in
    ``FASHION_MNIST_CLASS_NAMES``. On Debian, ``apt install dataset-fashion-mnist``
    provides the files offline.

    >>> (x_train, y_train), (x_test, y_test) = load_fashion_mnist()  # doctest: +SKIP
    >>> FASHION_MNIST_CLASS_NAMES[y_train[0]]  # doctest: +SKIP
    'Ankle boot'
    """
    return _load_idx_dataset("fashion_mnist", path, base_url, checksums, download)


def data_home() -> Path:
    """Root of lamina's dataset cache: ``$LAMINA_DATA_HOME`` or ``~/.cache/lamina/datasets``.

    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"LAMINA_DATA_HOME": "/srv/datasets"}):
    ...     print(data_home().as_posix())
    /srv/datasets
    """
    configured = os.environ.get("LAMINA_DATA_HOME")
    if configured:
        return Path(configured).expanduser()
    cache_root = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(cache_root).expanduser() / "lamina" / "datasets"


def _load_idx_dataset(
    name: str,
    path: Optional[PathLike],
    base_url: str,
    checksums: Optional[Mapping[str, Union[str, Sequence[str]]]],
    download: bool,
) -> Tuple[Split, Split]:
    accepted = _accepted_digests(name, checksums)
    if path is not None:
        # One call never mixes sources: with a path, all four files come from it.
        given = Path(path).expanduser()
        if not given.is_dir():
            raise FileNotFoundError(
                f"path must be a directory holding the {name} IDX files, received path={str(path)!r}"
            )
        found_in_path = {filename: _find(filename, [given]) for filename in _IDX_FILES}
        missing = [filename for filename, found in found_in_path.items() if found is None]
        if missing:
            raise FileNotFoundError(
                f"{str(given)!r} lacks the {name} files {', '.join(missing)} (each may also be unpacked, "
                f"without .gz); nothing is downloaded or taken from elsewhere when path is given"
            )
        files = {filename: found for filename, found in found_in_path.items() if found is not None}
    else:
        search = [Path(d) for d in SYSTEM_DIRS.get(name, ())]
        cache = data_home() / name
        search.append(cache)
        files = {}
        for filename in _IDX_FILES:
            found = _find(filename, search)
            if found is None:
                if not download:
                    places = ", ".join(str(d) for d in search)
                    raise FileNotFoundError(f"{filename} not found in {places}, and download=False")
                found = _download(_join_url(base_url, filename), cache / filename, accepted[filename])
            files[filename] = found

    x_train, y_train = _read_pair(files[TRAIN_IMAGES], files[TRAIN_LABELS])
    x_test, y_test = _read_pair(files[TEST_IMAGES], files[TEST_LABELS])
    return (x_train, y_train), (x_test, y_test)


def _read_pair(images_path: Path, labels_path: Path) -> Split:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{images_path} must hold uint8 images (n, rows, cols), found {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{labels_path} must hold uint8 labels (n,), found {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    return images, labels


def _find(filename: str, directories: Iterable[Path]) -> Optional[Path]:
    unpacked = filename[: -len(".gz")]
    for directory in directories:
        for candidate in (directory / filename, directory / unpacked):
            if candidate.is_file():
                return candidate
    return None


# --------------------------------------------------------------------------------------
# download with checksum verification
# --------------------------------------------------------------------------------------


def _accepted_digests(
    name: str, checksums: Optional[Mapping[str, Union[str, Sequence[str]]]]
) -> Dict[str, Tuple[str, ...]]:
    if checksums is None:
        return CHECKSUMS[name]
    accepted = {}
    for filename in _IDX_FILES:
        if filename not in checksums:
            raise ValueError(f"checksums has no entry for {filename!r}, received checksums={dict(checksums)!r}")
        value = checksums[filename]
        digests = (value,) if isinstance(value, str) else tuple(value)
        if not digests or not all(isinstance(d, str) and len(d) == 64 for d in digests):
            raise ValueError(f"checksums[{filename!r}] must be SHA-256 hex digest(s), received {value!r}")
        accepted[filename] = tuple(d.lower() for d in digests)
    return accepted


def _join_url(base_url: str, filename: str) -> str:
    return base_url.rstrip("/") + "/" + filename


def _download(url: str, target: Path, accepted: Tuple[str, ...]) -> Path:
    """Fetch ``url`` to ``target`` via a temporary file, keeping it only if its checksum matches."""
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"lamina: downloading {url} -> {target}", file=sys.stderr)
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_SECONDS) as response:
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        digest.update(chunk)
                        out.write(chunk)
            except (OSError, http.client.HTTPException) as error:  # URLError is an OSError
                raise OSError(
                    f"could not download {url}: {error}. Place {target.name} in {target.parent} "
                    "(or pass path=) to load it offline"
                ) from error
            out.flush()
            os.fsync(out.fileno())
        file_digest = digest.hexdigest()
        if file_digest not in accepted and _payload_sha256(temp) not in accepted:
            raise ValueError(
                f"checksum mismatch for {target.name} downloaded from {url}: SHA-256 {file_digest}, "
                f"expected one of {list(accepted)}; the file was discarded"
            )
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return target


def _payload_sha256(path: Path) -> Optional[str]:
    """SHA-256 of the bytes inside a gzip file (None if it is not valid gzip)."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                digest.update(chunk)
    except (gzip.BadGzipFile, EOFError, zlib.error):
        return None
    return digest.hexdigest()


# --------------------------------------------------------------------------------------
# IDX format
# --------------------------------------------------------------------------------------

# IDX header: two zero bytes, a type code, the number of dimensions; then one big-endian
# uint32 per dimension; then the values, big-endian, row-major.
_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_MAX_DEFLATE_RATIO = 1032  # deflate cannot expand data more than this


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (as used by MNIST), gzip-compressed or not, into a numpy array.

    Raises ValueError naming the file if it is truncated, corrupt or not IDX.

    >>> images = read_idx("train-images-idx3-ubyte.gz")     # uint8, (60000, 28, 28)  # doctest: +SKIP
    """
    file_path = Path(path)
    with open(file_path, "rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    file_size = file_path.stat().st_size
    try:
        with (gzip.open(file_path, "rb") if compressed else open(file_path, "rb")) as stream:
            return _parse_idx(stream, file_path, file_size, compressed)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise ValueError(f"{file_path} is not a valid gzip file (truncated or corrupt): {error}") from error


def _parse_idx(stream: Any, file_path: Path, file_size: int, compressed: bool) -> np.ndarray:
    magic = _read_exactly(stream, 4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_TYPES or magic[3] == 0:
        found = f"0x{magic.hex()}" if magic else "an empty file"
        raise ValueError(f"{file_path} is not an IDX file: bad magic number, found {found}")
    ndim = magic[3]
    raw_dims = _read_exactly(stream, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise ValueError(f"{file_path} is truncated: its header ends before the {ndim} dimension sizes")
    shape = struct.unpack(f">{ndim}I", raw_dims)
    dtype = np.dtype(_IDX_TYPES[magic[2]])
    expected = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    # Check before allocating, so a corrupt header cannot ask for terabytes.
    if not compressed and expected > file_size - len(magic) - len(raw_dims):
        raise ValueError(f"{file_path} is truncated: shape {shape} needs {expected} data bytes, "
                         f"found {file_size - len(magic) - len(raw_dims)}")  # fmt: skip
    if compressed and expected > file_size * _MAX_DEFLATE_RATIO:
        raise ValueError(f"{file_path} is truncated or corrupt: its header announces shape {shape} "
                         f"({expected} bytes), more than a {file_size}-byte gzip file can hold")  # fmt: skip

    values = np.empty(shape, dtype=dtype)
    buffer = values.reshape(-1).view(np.uint8).data
    received, more = _fill(stream, buffer)
    if received < expected:
        raise ValueError(f"{file_path} is truncated: shape {shape} needs {expected} data bytes, found {received}")
    if more:
        raise ValueError(f"{file_path} is corrupt: data continues past the {expected} bytes of shape {shape}")
    return values.astype(dtype.newbyteorder("="), copy=False)


def _read_exactly(stream: Any, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = stream.read(count - len(data))
        if not chunk:
            break
        data += chunk
    return data
