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
lamina's own layer, optimizer, loss and metric classes by name. Files are written atomically:
to a temporary file in the same directory, flushed to disk, then renamed over ``path``, so an
interrupted save leaves any previous file as it was. The path is used exactly as given (no
``.npz`` is appended): ``model.save("model.keras")`` writes ``model.keras``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import zipfile
from typing import Any, Dict, List, Tuple

import numpy as np

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


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=False)
    return buf.getvalue()


def _signed_archive(members: List[Tuple[str, bytes]]) -> bytes:
    """A zip of ``name.npy`` members whose archive comment is ``_SIGNATURE`` + the SHA-256 (hex)
    of every byte before the digest, so any damage anywhere in the file is detected."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0)), data)
        zf.comment = _SIGNATURE + b"0" * 64
    raw = bytearray(buf.getvalue())
    raw[-64:] = hashlib.sha256(bytes(raw[:-64])).hexdigest().encode("ascii")
    return bytes(raw)


def _archive(header: Dict[str, Any], arrays: List[Tuple[str, np.ndarray]]) -> bytes:
    header_bytes = json.dumps(header, default=_json_default, allow_nan=False, sort_keys=True).encode("utf-8")
    members = [("header", _npy_bytes(np.frombuffer(header_bytes, dtype=np.uint8)))]
    members += [(name, _npy_bytes(arr)) for name, arr in arrays]
    return _signed_archive(members)


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


def save_model(model: Any, path: Any) -> None:
    """Writes ``model`` to ``path`` (str or ``pathlib.Path``, used exactly as given) atomically;
    see the module docstring for what the file holds. ``load_model(path)`` reads it back.

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
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save the model to {path!r}: it is a directory")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save the model to {path!r}: the directory {directory!r} does not exist")
    header, arrays = _payload(model)
    data = _archive(header, arrays)  # everything is ready before the file system is touched
    base = os.path.basename(path)
    while True:
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.tmp")
        try:
            # 0o666 filtered by the umask, like a plain open(path, "w") would create it.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


# ---------------------------------------------------------------------------------- loading
class _Bad(Exception):
    """A problem with the file's content (turned into a ValueError naming the file)."""


def _read(path: str) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise _Bad("it is empty")
    if not data.startswith(_ZIP_MAGIC):
        raise _Bad("it is not a lamina model file (not an .npz archive)")
    tail = len(_SIGNATURE) + 64
    if len(data) < tail or data[-tail:-64] != _SIGNATURE:
        raise _Bad("it is not a complete lamina model file (no lamina checksum at its end: "
                   "a foreign .npz / zip archive, or a truncated file)")
    if hashlib.sha256(data[:-64]).hexdigest().encode("ascii") != data[-64:]:
        raise _Bad("its checksum does not match: the file is damaged")
    try:
        # lamina writes every member uncompressed: refuse anything else before inflating it, so
        # a small file cannot expand into a huge allocation (a zip bomb).
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                if info.compress_type != zipfile.ZIP_STORED or info.file_size > len(data):
                    raise _Bad(f"its member {info.filename!r} is compressed or larger than the file")
    except _Bad:
        raise
    except Exception as exc:
        raise _Bad(f"its archive cannot be read ({type(exc).__name__}: {exc})") from None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            names = list(npz.files)
            if "header" not in names:
                raise _Bad(f"it is not a lamina model file (an archive holding {names[:8]})")
            loaded = {name: npz[name] for name in names}
    except _Bad:
        raise
    except Exception as exc:  # zip / npy problems show up as many exception types
        raise _Bad(f"its arrays cannot be read ({type(exc).__name__}: {exc})") from None
    header_arr = loaded.pop("header")
    if header_arr.dtype != np.uint8 or header_arr.ndim != 1:
        raise _Bad("it is not a lamina model file (no lamina header)")
    try:
        header = json.loads(header_arr.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
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
    if not isinstance(order, list) or sorted(map(str, order)) != sorted(loaded):
        raise _Bad(f"its arrays {sorted(loaded)} do not match the header's list {order!r}")
    for name, arr in loaded.items():
        if arr.dtype.kind not in "uif":
            raise _Bad(f"its array {name!r} has the unsupported dtype {arr.dtype}")
    return header, loaded


def _declared_param_count(config: Dict[str, Any]) -> int:
    """The number of weights the architecture in ``config`` would allocate (exact integers)."""
    size, total = None, 0
    for entry in config["layers"]:
        layer = entry["config"]
        if entry["class_name"] == "Input":
            size = int(layer["shape"][0])
        elif layer.get("input_shape") is not None:
            size = int(layer["input_shape"][0])
        if entry["class_name"] == "Dense":
            if size is None:
                raise _Bad("its architecture has no input size")
            units = int(layer["units"])
            total += size * units + (units if layer.get("use_bias", True) else 0)
            size = units
    return total


def _rebuild(header: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> Any:
    from lamina import losses, metrics, optimizers
    from lamina.data import Standardizer
    from lamina.models import Sequential

    params = arrays["params"]
    declared = _declared_param_count(header["config"])
    if declared != params.size:
        # Checked before building, so a small file cannot make lamina allocate a huge network.
        raise _Bad(f"its architecture declares {declared} weights but it holds {params.size}")
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
    if params.dtype != dtype:
        raise _Bad(f"its weights are {params.dtype}, the model is {dtype}")
    slots = None
    if compile_config is not None:
        slots = [arrays[f"optimizer_slot_{i}"] for i in range(int(training["optimizer_slots"]))]
        for slot in slots:
            if slot.dtype != dtype or slot.ndim != 1:
                raise _Bad(f"an optimizer state array is {slot.dtype} {slot.shape}, expected 1-D {dtype}")
    model.set_state({"params": params, "optimizer_slots": slots,
                                   "iterations": int(training["iterations"]), "steps": int(training["steps"]),
                                   "epochs_trained": int(training["epochs_trained"])})
    if header.get("standardizer") is not None:
        scaler = Standardizer.from_state({"mean": arrays["standardizer_mean"], "scale": arrays["standardizer_scale"]},
                                         header["standardizer"]["config"])
        model.attach_standardizer(scaler)
    return model


def load_model(path: Any) -> Any:
    """Reads a model written by ``model.save`` / ``save_model``: compiled as it was saved (when
    it was), with its weights, optimizer state, counters and standardizer, ready to predict or to
    continue training. A file that is not a lamina model, or is damaged, truncated or from a newer
    format, raises ``ValueError`` naming the file.

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
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    try:
        header, arrays = _read(path)
        try:
            return _rebuild(header, arrays)
        except _Bad:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError) as exc:
            raise _Bad(f"its content is inconsistent ({type(exc).__name__}: {exc})") from None
    except _Bad as exc:
        raise ValueError(f"cannot load the model from {path!r}: {exc}") from None
