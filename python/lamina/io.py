"""Model files: ``save_model(model, path)`` / ``load_model(path)`` (also ``model.save(path)``).

One file holds everything needed to predict with a model and to continue training it exactly
where it stopped: the architecture (``model.get_config()``), the compile arguments, the weights,
the optimizer state and step counters, the epoch count (which decides the next shuffle) and any
attached ``Standardizer``.

The format is a plain numpy ``.npz`` archive (a zip of ``.npy`` arrays), readable with
``np.load(path, allow_pickle=False)``:

``header``                  uint8 bytes of a UTF-8 JSON document: ``format`` ("lamina-model"),
                            ``version``, the configs, counters and the list of arrays
``params``                  the flat parameter block (model dtype)
``optimizer_slot_<i>``      the optimizer's state vectors (some empty)
``standardizer_mean/scale`` float64, when a standardizer is attached

The zip's archive comment ends the file with ``lamina-sha256:`` and the SHA-256 (hex) of every
byte before it, so a truncated or damaged file is refused instead of loaded wrong.

Nothing in a file can run code: no pickle (object arrays are refused), and the JSON only selects
lamina's own layer, optimizer, loss and metric classes by name. ``load_model`` checks the
architecture against limits the caller can raise (``max_layers``, ``max_units``, ``max_params``)
before it reads any array or builds anything, then reads the arrays one at a time, each checked
against its ``.npy`` header before its memory is allocated. ``save_model`` streams each array
from memory into the archive (hashing as it writes), so a save needs no copy of the file.

What a save does to ``path`` (used exactly as given: no ``.npz`` is appended):

- it writes a temporary file in the target's directory, flushes it to disk and renames it over
  the target, so an interrupted save leaves any previous file as it was;
- a symlink is written through: its target is replaced (atomically, as above), the link stays;
- an existing file keeps its permission bits (set-id bits are dropped) and, where the caller may
  set it, its group; the temporary file is private (0600) until then, so a save never makes the
  content readable by more users than before. The new file is owned by the caller;
- a new file gets mode 0666 filtered by the umask, as ``open(path, "w")`` would create it;
- an existing file the caller cannot write is refused with ``PermissionError`` (even in a
  writable directory, where a rename could replace it), and errors name ``path``, not the
  temporary file.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import secrets
import stat
import sys
import zipfile
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from lamina._streams import fill as _fill
from lamina._validation import positive_int

FORMAT = "lamina-model"
VERSION = 1
_ZIP_MAGIC = b"PK\x03\x04"
_SIGNATURE = b"lamina-sha256:"


# ---------------------------------------------------------------------------------- saving
def _json_default(value: Any) -> Any:
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} value {value!r} in a model file")


def _payload(model: Any) -> Tuple[Dict[str, Any], List[Tuple[str, np.ndarray]]]:
    from lamina.models import Sequential

    if not isinstance(model, Sequential):
        raise TypeError(f"save_model() takes a lamina Sequential model, received {type(model).__name__}")
    state = model.get_state()  # raises a clear error for an unbuilt model
    compile_config = model.compile_config()
    arrays: List[Tuple[str, np.ndarray]] = [("params", np.ascontiguousarray(state["params"]))]
    n_slots = 0
    if compile_config is not None:
        for i, slot in enumerate(state["optimizer_slots"]):
            arrays.append((f"optimizer_slot_{i}", np.ascontiguousarray(slot)))
        n_slots = len(state["optimizer_slots"])
    standardizer = None
    if model.standardizer is not None:
        std_state = model.standardizer.state()
        standardizer = {"config": model.standardizer.get_config()}
        arrays.append(("standardizer_mean", np.ascontiguousarray(std_state["mean"], dtype=np.float64)))
        arrays.append(("standardizer_scale", np.ascontiguousarray(std_state["scale"], dtype=np.float64)))
    from lamina import __version__

    header = {
        "format": FORMAT,
        "version": VERSION,
        "lamina_version": __version__,
        "config": model.get_config(),
        "compile_config": compile_config,
        "training": {"iterations": state["iterations"], "steps": state["steps"],
                     "epochs_trained": state["epochs_trained"], "optimizer_slots": n_slots},
        "standardizer": standardizer,
        "arrays": [name for name, _ in arrays],
    }
    return header, arrays


class _SigningWriter:
    """A forward-only file for ``zipfile``: writes and hashes every byte in order, holding back the
    last 64 (the placeholder digest at the end of the archive comment), which ``finish`` replaces
    by the SHA-256 of everything before them. ``seek`` is refused, so zipfile streams each member
    (sizes in a data descriptor after it) instead of patching headers already hashed."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self._hash = hashlib.sha256()
        self._tail = b""
        self._pos = 0

    def _emit(self, data: Any) -> None:
        if len(data):
            self._hash.update(data)
            self._f.write(data)

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        n = len(view)
        if n >= 64:
            self._emit(self._tail)
            self._emit(view[:-64])
            self._tail = bytes(view[-64:])
        else:
            joined = self._tail + bytes(view)
            self._emit(joined[:-64])
            self._tail = joined[-64:]
        self._pos += n
        return n

    def tell(self) -> int:
        return self._pos

    def seek(self, *args: Any) -> int:
        raise OSError("the model file is written front to back")

    def flush(self) -> None:
        pass

    def finish(self) -> None:
        self._f.write(self._hash.hexdigest().encode("ascii"))


def _write_archive(f: Any, header: Dict[str, Any], arrays: List[Tuple[str, np.ndarray]]) -> None:
    """Streams the signed archive into ``f``: each array goes from its own memory to the file, so
    a save needs no copy of the data beyond what ``model.get_state()`` returns."""
    header_bytes = json.dumps(header, default=_json_default, allow_nan=False, sort_keys=True).encode("utf-8")
    members = [("header", np.frombuffer(header_bytes, dtype=np.uint8))] + arrays
    writer = _SigningWriter(f)
    with zipfile.ZipFile(writer, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:  # type: ignore[call-overload]
        for name, arr in members:
            arr = np.ascontiguousarray(arr)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, mode="w", force_zip64=arr.nbytes > 2**31 - 2**20) as member:
                np.lib.format.write_array_header_1_0(member, np.lib.format.header_data_from_array_1_0(arr))
                member.write(arr.reshape(-1).data.cast("B") if arr.size else b"")
        zf.comment = _SIGNATURE + b"0" * 64
    writer.finish()


def _signed_archive(members: List[Tuple[str, bytes]]) -> bytes:
    """A zip of ``name.npy`` members (raw .npy bytes, written as given) signed like a model file:
    for tests and tools that build files by hand."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0)), data)
        zf.comment = _SIGNATURE + b"0" * 64
    raw = bytearray(buf.getvalue())
    raw[-64:] = hashlib.sha256(bytes(raw[:-64])).hexdigest().encode("ascii")
    return bytes(raw)


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows: directories cannot be opened; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _renamed(exc: OSError, path: str) -> OSError:
    """The same error, naming the caller's path instead of the hidden temporary file."""
    if exc.errno is None:
        return exc
    return type(exc)(exc.errno, f"cannot save the model to {path!r}: {exc.strerror}")


def save_model(model: Any, path: Any) -> None:
    """Writes ``model`` to ``path`` (str or ``pathlib.Path``, used exactly as given) atomically;
    see the module docstring for what the file holds and what happens to an existing file.
    ``load_model(path)`` reads it back.

    >>> import os, tempfile
    >>> model = lm.Sequential([lm.layers.Dense(2, input_shape=(3,))], seed=0)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     save_model(model, os.path.join(tmp, "model.lamina"))
    ...     print(os.listdir(tmp))
    ['model.lamina']
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, received path={path!r}")
    path = os.fspath(path)
    if not isinstance(path, str) or not path:
        raise ValueError(f"path must be a non-empty file name, received path={path!r}")
    # A symlink is written through: its target is replaced, the link stays.
    target = os.path.realpath(path)
    if os.path.isdir(target):
        raise IsADirectoryError(f"cannot save the model to {path!r}: it is a directory")
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save the model to {path!r}: the directory {directory!r} does not exist")
    try:
        existing: Optional[os.stat_result] = os.stat(target)
    except FileNotFoundError:
        existing = None
    if existing is not None and not os.access(target, os.W_OK):
        # As open(path, "w") would: the directory may be writable, the file is not ours to replace.
        raise PermissionError(errno.EACCES, f"cannot save the model to {path!r}: the file is not writable")
    header, arrays = _payload(model)  # everything is ready before the file system is touched
    base = os.path.basename(target)
    while True:
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.tmp")
        try:
            # A new file gets 0o666 filtered by the umask, like open(path, "w"); over an existing
            # file the temp starts private and takes the file's permission bits just before the
            # rename, so the content is never readable by more users than before.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666 if existing is None else 0o600)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise _renamed(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            _write_archive(f, header, arrays)
            f.flush()
            if existing is not None:
                _keep_owner_and_mode(f.fileno(), existing)
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _renamed(exc, path) from None
        raise
    _fsync_dir(directory)


def _keep_owner_and_mode(fd: int, existing: os.stat_result) -> None:
    if hasattr(os, "fchown"):
        try:
            os.fchown(fd, -1, existing.st_gid)  # keep the group where we may (we are a member)
        except OSError:
            pass
    if hasattr(os, "fchmod"):
        os.fchmod(fd, stat.S_IMODE(existing.st_mode) & 0o777)  # never set-id bits


# ---------------------------------------------------------------------------------- loading
class _Bad(Exception):
    """A problem with the file's content (turned into a ValueError naming the file)."""


# Loader limits (keyword arguments of load_model): a file over one is refused before any of its
# arrays is read and before any network is built.
MAX_LAYERS = 1024
MAX_UNITS = 2**20
MAX_PARAMS = 2**28
_HASH_BLOCK = 2**20


def _member_header(fp: Any, name: str) -> Tuple[Tuple[int, ...], np.dtype]:
    """Reads the .npy header at ``fp``'s position: (shape, dtype), refusing anything but a 1-D
    array of plain numbers (so no pickle and no object array can follow)."""
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise _Bad(f"its array {name!r} has the unsupported .npy version {version}")
    except _Bad:
        raise
    except Exception as exc:
        raise _Bad(f"its array {name!r} cannot be read ({type(exc).__name__}: {exc})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "uif":
        raise _Bad(f"its array {name!r} has the unsupported dtype {dtype}")
    if len(shape) != 1:
        raise _Bad(f"its array {name!r} has shape {shape}, expected a 1-D array")
    return shape, dtype


class _Archive:
    """An open, checksum-verified model file: the header is parsed, arrays are read on demand,
    one at a time, each checked against its .npy header before its memory is allocated."""

    def __init__(self, f: Any) -> None:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise _Bad("it is empty")
        if f.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
            raise _Bad("it is not a lamina model file (not an .npz archive)")
        tail = len(_SIGNATURE) + 64
        f.seek(max(size - tail, 0))
        trailer = f.read(tail)
        if size < tail or trailer[:-64] != _SIGNATURE:
            raise _Bad("it is not a complete lamina model file (no lamina checksum at its end: "
                       "a foreign .npz / zip archive, or a truncated file)")
        f.seek(0)
        digest, left = hashlib.sha256(), size - 64
        while left > 0:
            block = f.read(min(_HASH_BLOCK, left))
            if not block:
                raise _Bad("it changed while it was read")
            digest.update(block)
            left -= len(block)
        if digest.hexdigest().encode("ascii") != trailer[-64:]:
            raise _Bad("its checksum does not match: the file is damaged")
        f.seek(0)
        try:
            self._zip = zipfile.ZipFile(f)
            infos = self._zip.infolist()
        except Exception as exc:
            raise _Bad(f"its archive cannot be read ({type(exc).__name__}: {exc})") from None
        self._infos: Dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            # lamina writes every member uncompressed: refuse anything else before inflating it,
            # so a small file cannot expand into a huge allocation (a zip bomb).
            if info.compress_type != zipfile.ZIP_STORED or info.file_size > size:
                raise _Bad(f"its member {info.filename!r} is compressed or larger than the file")
            name = info.filename[:-len(".npy")] if info.filename.endswith(".npy") else None
            if not name or name in self._infos:
                raise _Bad(f"it is not a lamina model file (an archive holding {info.filename!r})")
            self._infos[name] = info
        if "header" not in self._infos:
            raise _Bad(f"it is not a lamina model file (an archive holding {sorted(self._infos)[:8]})")

    @property
    def names(self) -> List[str]:
        return [name for name in self._infos if name != "header"]

    def shape(self, name: str) -> Tuple[Tuple[int, ...], np.dtype]:
        with self._open(name) as fp:
            return _member_header(fp, name)

    def _open(self, name: str) -> Any:
        try:
            return self._zip.open(self._infos[name])
        except Exception as exc:
            raise _Bad(f"its array {name!r} cannot be read ({type(exc).__name__}: {exc})") from None

    def array(self, name: str) -> np.ndarray:
        with self._open(name) as fp:
            (count,), dtype = _member_header(fp, name)
            if count * dtype.itemsize > self._infos[name].file_size:
                raise _Bad(f"its array {name!r} announces {count} values, more than its member holds")
            out = np.empty(count, dtype=dtype)
            try:
                received, more = _fill(fp, out.data.cast("B"))
            except Exception as exc:
                raise _Bad(f"its array {name!r} cannot be read ({type(exc).__name__}: {exc})") from None
            if received < out.nbytes:
                raise _Bad(f"its array {name!r} is truncated")
            if more:
                raise _Bad(f"its array {name!r} has data after its values")
            return out

    def header(self) -> Dict[str, Any]:
        header_arr = self.array("header")
        if header_arr.dtype != np.uint8:
            raise _Bad("it is not a lamina model file (no lamina header)")
        try:
            header = json.loads(header_arr.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise _Bad("its header is not valid JSON") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise _Bad("it is not a lamina model file (unknown format marker)")
        version = header.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise _Bad(f"its format version is invalid ({version!r})")
        if version > VERSION:
            raise _Bad(f"it was written in format version {version} by lamina {header.get('lamina_version', '?')}; "
                       f"this lamina reads up to version {VERSION}: upgrade lamina")
        order = header.get("arrays")
        if not isinstance(order, list) or sorted(map(str, order)) != sorted(self.names):
            raise _Bad(f"its arrays {sorted(self.names)} do not match the header's list {order!r}")
        for name in self.names:
            self.shape(name)  # every member, read or not, is a plain 1-D numeric .npy
        return header


def _width(value: Any, what: str, max_units: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Bad(f"its architecture has an invalid {what} ({value!r})")
    if value > max_units:
        raise _Bad(f"its {what} is {value}, over the limit max_units={max_units} "
                   f"(pass load_model(..., max_units=...) to allow it)")
    return value


def _declared_param_count(config: Any, max_layers: int, max_units: int, max_params: int) -> int:
    """The number of weights the architecture in ``config`` would allocate (exact integers),
    after checking it against the loader limits; reads no array and builds nothing."""
    entries = config.get("layers") if isinstance(config, dict) else None
    if not isinstance(entries, list):
        raise _Bad("its architecture has no list of layers")
    if len(entries) > max_layers:
        raise _Bad(f"its architecture has {len(entries)} layers, over the limit max_layers={max_layers} "
                   f"(pass load_model(..., max_layers=...) to allow it)")
    size, total = None, 0
    for i, entry in enumerate(entries):
        layer = entry.get("config") if isinstance(entry, dict) else None
        if not isinstance(layer, dict):
            raise _Bad(f"its layer {i} has no config")
        shape = layer.get("shape") if entry.get("class_name") == "Input" else layer.get("input_shape")
        if shape is not None:
            if not isinstance(shape, list) or not 1 <= len(shape) <= 8:
                raise _Bad(f"its layer {i} has an invalid input shape ({shape!r})")
            dims = [_width(d, "input dimension", max_units) for d in shape]
            size = _width(math.prod(dims), "input size", max_units)
        if entry.get("class_name") == "Dense":
            if size is None:
                raise _Bad("its architecture has no input size")
            units = _width(layer.get("units"), f"layer {i}'s units", max_units)
            total += size * units + (units if layer.get("use_bias", True) else 0)
            if total > max_params:
                raise _Bad(f"its architecture has more than {max_params} weights, over the limit "
                           f"max_params={max_params} (pass load_model(..., max_params=...) to allow it)")
            size = units
    return total


class _InMemory:
    """The arrays of a model already in memory (the scikit-learn estimators' pickles), read
    through the same checks as a file's."""

    def __init__(self, arrays: Dict[str, np.ndarray]) -> None:
        self._arrays = arrays

    @property
    def names(self) -> List[str]:
        return list(self._arrays)

    def shape(self, name: str) -> Tuple[Tuple[int, ...], np.dtype]:
        arr = self._arrays[name]
        if arr.dtype.hasobject or arr.dtype.kind not in "uif" or arr.ndim != 1:
            raise _Bad(f"its array {name!r} is {arr.dtype} {arr.shape}, expected a 1-D array of numbers")
        return arr.shape, arr.dtype

    def array(self, name: str) -> np.ndarray:
        self.shape(name)
        return self._arrays[name]


def _rebuild(header: Dict[str, Any], source: Any,
             limits: Tuple[int, int, int] = (sys.maxsize,) * 3) -> Any:
    """The model described by ``header`` with its arrays from ``source``: an open ``_Archive``,
    or a dict of arrays (as ``_payload`` returns them; a model from memory, no loader limits)."""
    from lamina import losses, metrics, optimizers
    from lamina.data import Standardizer
    from lamina.models import Sequential

    archive = _InMemory(source) if isinstance(source, dict) else source
    declared = _declared_param_count(header.get("config"), *limits)
    (held,), _ = archive.shape("params") if "params" in archive.names else ((None,), None)
    if declared != held:
        # Checked before building, so a small file cannot make lamina allocate a huge network.
        raise _Bad(f"its architecture declares {declared} weights but it holds {held}")
    # Building is linear in the layer count once Sequential builds once per from_config.
    model = Sequential.from_config(header["config"])
    if not model.built:
        raise _Bad("its architecture has no input size")
    compile_config = header.get("compile_config")
    training = header["training"]
    if compile_config is not None:
        model.compile(optimizer=optimizers.get(dict(compile_config["optimizer"])),
                      loss=losses.get(dict(compile_config["loss"])),
                      metrics=[metrics.deserialize(entry) for entry in compile_config["metrics"]])
    dtype = np.dtype(model.dtype)
    params = archive.array("params")
    if params.dtype != dtype:
        raise _Bad(f"its weights are {params.dtype}, the model is {dtype}")
    slots = None
    if compile_config is not None:
        slots = []
        for i in range(int(training["optimizer_slots"])):
            (n,), slot_dtype = archive.shape(f"optimizer_slot_{i}")
            if slot_dtype != dtype or n not in (0, params.size):
                raise _Bad(f"an optimizer state array is {slot_dtype} ({n},), expected ({params.size},) {dtype}")
            slots.append(archive.array(f"optimizer_slot_{i}"))
    model.set_state({"params": params, "optimizer_slots": slots,
                     "iterations": int(training["iterations"]), "steps": int(training["steps"]),
                     "epochs_trained": int(training["epochs_trained"])})
    if header.get("standardizer") is not None:
        for name in ("standardizer_mean", "standardizer_scale"):
            (n,), _ = archive.shape(name)
            if n != model.input_size:
                raise _Bad(f"its {name} holds {n} values, the model has {model.input_size} inputs")
        scaler = Standardizer.from_state({"mean": archive.array("standardizer_mean"),
                                          "scale": archive.array("standardizer_scale")},
                                         header["standardizer"]["config"])
        model.attach_standardizer(scaler)
    return model


def load_model(path: Any, *, max_layers: int = MAX_LAYERS, max_units: int = MAX_UNITS,
               max_params: int = MAX_PARAMS) -> Any:
    """Reads a model written by ``model.save`` / ``save_model``: compiled as it was saved (when
    it was), with its weights, optimizer state, counters and standardizer, ready to predict or to
    continue training. A file that is not a lamina model, or is damaged, truncated or from a newer
    format, raises ``ValueError`` naming the file.

    The limits bound what a file may ask for, so a small crafted file cannot tie up the loader:
    ``max_layers`` (entries in the architecture, ``Input`` included; default 1024), ``max_units``
    (the input size and each Dense layer's units; default 2**20 = 1,048,576) and ``max_params``
    (weights in total; default 2**28 = 268,435,456, 1 GiB in float32). A file over a limit is
    refused with a ``ValueError`` naming it, before any array is read; raise the limit to load it.

    >>> import os, tempfile
    >>> model = lm.Sequential([lm.layers.Dense(2, input_shape=(3,))], seed=0)
    >>> model.compile(optimizer="adam", loss="mse")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     model.save(os.path.join(tmp, "model.lamina"))
    ...     restored = load_model(os.path.join(tmp, "model.lamina"))
    >>> restored.optimizer, np.array_equal(restored.get_weights()[0], model.get_weights()[0])
    (Adam(...), True)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, received path={path!r}")
    limits = (positive_int(max_layers, "max_layers"), positive_int(max_units, "max_units"),
              positive_int(max_params, "max_params"))
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    try:
        with open(path, "rb") as f:
            archive = _Archive(f)
            header = archive.header()
            try:
                return _rebuild(header, archive, limits)
            except _Bad:
                raise
            except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError) as exc:
                raise _Bad(f"its content is inconsistent ({type(exc).__name__}: {exc})") from None
    except _Bad as exc:
        raise ValueError(f"cannot load the model from {path!r}: {exc}") from None
