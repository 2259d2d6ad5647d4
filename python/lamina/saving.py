"""What a model file holds, and putting a model in one or taking it out.

One file holds everything needed to predict with a model and to continue training it exactly
where it stopped: the architecture (``model.get_config()``), the compile arguments, the weights,
the optimizer state and step counters, the epoch count (which decides the next shuffle) and any
attached ``Standardizer``. ``lamina.io`` is the container (format, checksum, atomic writes);
this module reads and writes models through their public state API only.

Loading checks the architecture against limits the caller can raise (``max_layers``,
``max_units``, ``max_params``) before it reads any array or builds anything.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any, Dict, List, Tuple

import numpy as np

from lamina import _core, io, losses, metrics, optimizers
from lamina._validation import positive_int
from lamina.data import Standardizer

# Loader limits (keyword arguments of load_model): a file over one is refused before any of its
# arrays is read and before any network is built.
MAX_LAYERS = 1024
MAX_UNITS = 2**20
MAX_PARAMS = 2**28


# ---------------------------------------------------------------------------------- saving
def payload(model: Any) -> Tuple[Dict[str, Any], List[Tuple[str, np.ndarray]]]:
    """The header and named arrays of ``model``'s file, through its public state API.

    >>> header, arrays = payload(lm.Sequential([lm.layers.Dense(2, input_shape=(3,))], seed=0))
    >>> header["format"], [name for name, _ in arrays]
    ('lamina-model', ['params'])
    """
    if not all(hasattr(model, name) for name in ("get_state", "get_config", "compile_config", "standardizer")):
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
    header = {
        "format": io.FORMAT,
        "version": io.VERSION,
        "lamina_version": _core.__version__,
        "config": model.get_config(),
        "compile_config": compile_config,
        "training": {"iterations": state["iterations"], "steps": state["steps"],
                     "epochs_trained": state["epochs_trained"], "optimizer_slots": n_slots},
        "standardizer": standardizer,
        "arrays": [name for name, _ in arrays],
    }
    return header, arrays


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
    io.write_file(path, lambda: payload(model))


# ---------------------------------------------------------------------------------- loading
def _width(value: Any, what: str, max_units: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise io.BadFile(f"its architecture has an invalid {what} ({value!r})")
    if value > max_units:
        raise io.BadFile(f"its {what} is {value}, over the limit max_units={max_units} "
                   f"(pass load_model(..., max_units=...) to allow it)")
    return value


def _declared_param_count(config: Any, max_layers: int, max_units: int, max_params: int) -> int:
    """The number of weights the architecture in ``config`` would allocate (exact integers),
    after checking it against the loader limits; reads no array and builds nothing."""
    entries = config.get("layers") if isinstance(config, dict) else None
    if not isinstance(entries, list):
        raise io.BadFile("its architecture has no list of layers")
    if len(entries) > max_layers:
        raise io.BadFile(f"its architecture has {len(entries)} layers, over the limit max_layers={max_layers} "
                   f"(pass load_model(..., max_layers=...) to allow it)")
    size, total = None, 0
    for i, entry in enumerate(entries):
        layer = entry.get("config") if isinstance(entry, dict) else None
        if not isinstance(layer, dict):
            raise io.BadFile(f"its layer {i} has no config")
        shape = layer.get("shape") if entry.get("class_name") == "Input" else layer.get("input_shape")
        if shape is not None:
            if not isinstance(shape, list) or not 1 <= len(shape) <= 8:
                raise io.BadFile(f"its layer {i} has an invalid input shape ({shape!r})")
            dims = [_width(d, "input dimension", max_units) for d in shape]
            size = _width(math.prod(dims), "input size", max_units)
        if entry.get("class_name") == "Dense":
            if size is None:
                raise io.BadFile("its architecture has no input size")
            units = _width(layer.get("units"), f"layer {i}'s units", max_units)
            total += size * units + (units if layer.get("use_bias", True) else 0)
            if total > max_params:
                raise io.BadFile(f"its architecture has more than {max_params} weights, over the limit "
                           f"max_params={max_params} (pass load_model(..., max_params=...) to allow it)")
            size = units
        elif entry.get("class_name") in _NORMALIZATION_VECTORS:
            if size is None:
                raise io.BadFile("its architecture has no input size")
            # One vector per feature for each of gamma, beta (when present) and the statistics.
            statistics, affine = _NORMALIZATION_VECTORS[entry["class_name"]]
            vectors = statistics + (sum(1 for key in ("center", "scale") if layer.get(key, True)) if affine else 0)
            total += vectors * size
            if total > max_params:
                raise io.BadFile(f"its architecture has more than {max_params} weights, over the limit "
                           f"max_params={max_params} (pass load_model(..., max_params=...) to allow it)")
    return total


# (statistics vectors, whether gamma and beta may be present) per normalization layer.
_NORMALIZATION_VECTORS = {"BatchNormalization": (2, True), "LayerNormalization": (0, True), "Normalization": (2, False)}


def rebuild(model_class: Any, header: Dict[str, Any], source: Any,
            limits: Tuple[int, int, int] = (sys.maxsize,) * 3) -> Any:
    """The ``model_class`` model (``Sequential``) described by ``header`` with its arrays from
    ``source``: an open ``io.Archive``, or a dict of arrays (as ``payload`` returns them; a model
    from memory, no loader limits).

    >>> header, arrays = payload(lm.Sequential([lm.layers.Dense(2, input_shape=(3,))], seed=0))
    >>> rebuild(lm.Sequential, header, dict(arrays)).count_params()
    8
    """
    archive = io.InMemory(source) if isinstance(source, dict) else source
    declared = _declared_param_count(header.get("config"), *limits)
    (held,), _ = archive.shape("params") if "params" in archive.names else ((None,), None)
    if declared != held:
        # Checked before building, so a small file cannot make lamina allocate a huge network.
        raise io.BadFile(f"its architecture declares {declared} weights but it holds {held}")
    # Building is linear in the layer count once Sequential builds once per from_config.
    model = model_class.from_config(header["config"])
    if not model.built:
        raise io.BadFile("its architecture has no input size")
    compile_config = header.get("compile_config")
    training = header["training"]
    if compile_config is not None:
        model.compile(optimizer=optimizers.get(dict(compile_config["optimizer"])),
                      loss=losses.get(dict(compile_config["loss"])),
                      metrics=[metrics.deserialize(entry) for entry in compile_config["metrics"]],
                      weighted_metrics=[metrics.deserialize(entry)
                                        for entry in compile_config.get("weighted_metrics", [])])
    dtype = np.dtype(model.dtype)
    params = archive.array("params")
    if params.dtype != dtype:
        raise io.BadFile(f"its weights are {params.dtype}, the model is {dtype}")
    slots = None
    if compile_config is not None:
        slots = []
        for i in range(int(training["optimizer_slots"])):
            (n,), slot_dtype = archive.shape(f"optimizer_slot_{i}")
            if slot_dtype != dtype or n not in (0, params.size):
                raise io.BadFile(f"an optimizer state array is {slot_dtype} ({n},), expected ({params.size},) {dtype}")
            slots.append(archive.array(f"optimizer_slot_{i}"))
    model.set_state({"params": params, "optimizer_slots": slots,
                     "iterations": int(training["iterations"]), "steps": int(training["steps"]),
                     "epochs_trained": int(training["epochs_trained"])})
    if header.get("standardizer") is not None:
        for name in ("standardizer_mean", "standardizer_scale"):
            (n,), _ = archive.shape(name)
            if n != model.input_size:
                raise io.BadFile(f"its {name} holds {n} values, the model has {model.input_size} inputs")
        scaler = Standardizer.from_state({"mean": archive.array("standardizer_mean"),
                                          "scale": archive.array("standardizer_scale")},
                                         header["standardizer"]["config"])
        model.attach_standardizer(scaler)
    return model


def read_model(model_class: Any, path: Any, *, max_layers: int = MAX_LAYERS, max_units: int = MAX_UNITS,
               max_params: int = MAX_PARAMS) -> Any:
    """Reads the ``model_class`` model (``Sequential``) from ``path``; ``lm.load_model`` (in
    ``lamina.models``) is this with ``Sequential``, and documents the limits.

    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     lm.Sequential([lm.layers.Dense(2, input_shape=(3,))], seed=0).save(os.path.join(tmp, "m"))
    ...     read_model(lm.Sequential, os.path.join(tmp, "m"), max_layers=4).count_params()
    8
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
            archive = io.Archive(f)
            header = archive.header()
            try:
                return rebuild(model_class, header, archive, limits)
            except io.BadFile:
                raise
            except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError) as exc:
                raise io.BadFile(f"its content is inconsistent ({type(exc).__name__}: {exc})") from None
    except io.BadFile as exc:
        raise ValueError(f"cannot load the model from {path!r}: {exc}") from None
