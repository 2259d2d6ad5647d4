"""``Sequential``: a stack of layers, compiled with a loss and an optimizer, trained by ``fit``.

The model describes the network and checks every argument; the C++ core holds the parameters,
the optimizer state and runs the training loop. ``fit`` hands the core a chunk of batches at a
time (a fraction of a second of work, with the GIL released) and gets control back between
chunks for the progress display, callbacks and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import secrets
import warnings
from typing import Any, Callable, Dict, Generator, Iterable, List, Optional, Sequence, Set, Tuple, Union

import numpy as np

from lamina import _core, _prefetch, _sources, _weights, dtype_policies, losses, normalization, optimizers, saving, training
from lamina import _validation as check
from lamina import callbacks as callbacks_module
from lamina import distributed as distributed_module
from lamina import layers as layers_module
from lamina import metrics as metrics_module
from lamina import onnx as onnx_export
from lamina.data import Standardizer
from lamina.layers import Input, Layer
from lamina.progress import PassProgress, ProgressDisplay

_DTYPES = {"float32": np.float32, "float64": np.float64}  # by variable dtype (model.dtype)
_CORE = {"float32": _core.Network32, "float64": _core.Network64}


class Sequential:
    """A linear stack of layers, Keras-style.

    >>> import lamina as lm
    >>> model = lm.Sequential([
    ...     lm.layers.Dense(16, activation="relu", input_shape=(4,)),
    ...     lm.layers.Dense(3, activation="softmax"),
    ... ], seed=0)
    >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    >>> model.count_params()
    131
    """

    def __init__(self, layers: Optional[Iterable[Layer]] = None, seed: Optional[int] = None,
                 dtype: Any = "float32", name: Optional[str] = None) -> None:
        if seed is None:
            seed = secrets.randbits(63)
        self.seed = check.bounded_int(seed, "seed", 0, 2**64 - 1)  # the core's 64-bit seed
        self._dtype_policy = dtype_policies.get(dtype)
        self.name = name or "sequential"
        self._layers: List[Layer] = []
        self._layer_names: Set[str] = set()  # add's duplicate check in O(1); a held layer's name is fixed
        self._input_layer: Optional[Input] = None
        self._core_net: Any = None
        self._pending_build = False  # layers were added since the last build: build at first need
        self._num_threads: Optional[int] = None
        self._busy: Optional[str] = None  # "fit" while fit runs: the structure may not change then
        self.optimizer: Optional[optimizers.Optimizer] = None
        self.loss: Optional[losses.Loss] = None
        self.metrics: List[metrics_module.Metric] = []
        self.weighted_metrics: List[metrics_module.Metric] = []
        self._weighted_names: List[str] = []  # their keys in the logs
        self._scoring: Optional[str] = None
        self.stop_training = False
        self.history: Optional[callbacks_module.History] = None
        self.epochs_trained = 0  # completed epochs: each draws its own shuffle
        self.standardizer: Any = None  # a fitted lm.data.Standardizer applied to every input
        self._gradient_hook: Optional[Callable[[np.ndarray, int], None]] = None
        if layers is not None:
            if isinstance(layers, Layer) or not isinstance(layers, Iterable):
                raise TypeError(f"layers must be a list of layers, received layers={check.describe(layers)}")
            for layer in layers:
                self.add(layer)
            self._build_if_pending()  # once, for the whole list (Keras builds here too)

    # ----------------------------------------------------------------- dtype
    @property
    def dtype_policy(self) -> dtype_policies.DTypePolicy:
        """The dtype policy the model was made with (``dtype=`` of the constructor): "float32",
        "float64" or "mixed_bfloat16" (see ``lm.dtype_policies``)."""
        return self._dtype_policy

    @property
    def dtype(self) -> str:
        """What the weights, inputs, targets and predictions are held in (Keras's variable
        dtype): "float32" under "mixed_bfloat16"."""
        return self._dtype_policy.variable_dtype

    @property
    def compute_dtype(self) -> str:
        """What the Dense products compute in: "bfloat16" under "mixed_bfloat16"."""
        return self._dtype_policy.compute_dtype

    # ----------------------------------------------------------------- structure
    @property
    def layers(self) -> List[Layer]:
        """The layers, without the ``Input`` declaration (as in Keras)."""
        return list(self._layers)

    @property
    def input_dims(self) -> Optional[Tuple[int, ...]]:
        """The shape of one input sample, e.g. ``(784,)`` or ``(28, 28)``; None until known."""
        if self._input_layer is not None:
            return self._input_layer.input_dims
        return self._layers[0].input_dims if self._layers else None

    @property
    def input_size(self) -> Optional[int]:
        """The number of values in one input sample (what the core sees per row)."""
        dims = self.input_dims
        return None if dims is None else math.prod(dims)

    def _layer_dims(self, input_dims: Optional[Tuple[int, ...]] = None) -> List[Optional[Tuple[int, ...]]]:
        """The output sample shape of each layer (None where unknown: no input shape yet; a
        Dense layer's is known regardless). Raises ValueError for a layer that cannot take the
        shape it receives."""
        dims = self.input_dims if input_dims is None else input_dims
        out: List[Optional[Tuple[int, ...]]] = []
        for layer in self._layers:
            if dims is not None:
                dims = layer.output_dims(dims)
            elif isinstance(layer, layers_module.Dense):
                dims = (layer.units,)
            out.append(dims)
        return out

    @property
    def output_size(self) -> int:
        dims = self._layer_dims()[-1] if self._layers else self.input_dims
        return math.prod(dims) if dims else 0

    def _core_specs(self, input_dims: Tuple[int, ...]) -> List[Any]:
        """What the C++ core builds: one spec per layer that computes something."""
        specs, dims = [], input_dims
        for layer in self._layers:
            spec = layer._core_spec(dims)
            if spec is not None:
                specs.append(spec)
            dims = layer.output_dims(dims)
        return specs

    @property
    def built(self) -> bool:
        self._build_if_pending()
        return self._core_net is not None

    @property
    def _net(self) -> Any:
        """The C++ network, built first if layers were added since the last build."""
        self._build_if_pending()
        return self._core_net

    def _build_if_pending(self) -> None:
        if self._pending_build and self._busy != "build":
            self.build()

    @property
    def num_threads(self) -> Optional[int]:
        """Threads for this model's calls into the core; None (the default) follows
        ``lm.set_num_threads``. Results do not depend on it."""
        return self._num_threads

    @num_threads.setter
    def num_threads(self, value: Optional[int]) -> None:
        if value is not None:
            value = check.bounded_int(value, "num_threads", 1, int(_core.max_threads()))
        self._num_threads = value
        if self._core_net is not None:
            self._core_net.num_threads = value or 0

    def _require_idle(self, what: str) -> None:
        if self._busy is not None:
            raise ValueError(f"{what}() cannot run while {self._busy}() is running on this model (for example from "
                             f"a callback); call it after {self._busy}() returns")

    def add(self, layer: Layer) -> None:
        """Appends a layer. ``Input(shape=...)`` may only come first. Once the input size is known
        the model is built; adding to a built model keeps the weights of the layers it had."""
        self._require_idle("add")
        if not isinstance(layer, Layer):
            raise TypeError(f"add() takes a lamina layer, received {check.describe(layer)}")
        if isinstance(layer, Input):
            if self._layers or self._input_layer is not None:
                raise ValueError("Input(shape=...) must be the first layer of the model")
            self._input_layer = layer
            return
        if layer._owner() is self or layer.name in self._layer_names:
            raise ValueError(f"the model already has a layer named {layer.name!r}")
        if layer.input_dims is not None:
            if self._layers:
                raise ValueError(f"only the first layer may declare input_shape, received it on {layer.name!r}")
            if self._input_layer is not None and layer.input_dims != self._input_layer.input_dims:
                raise ValueError(f"layer {layer.name!r} declares input_shape={layer.input_dims!r} but the model's "
                                 f"Input has shape={self._input_layer.input_dims!r}")
        layer._claim(self)
        self._layers.append(layer)
        self._layer_names.add(layer.name)
        # Keras builds as soon as the input size is known; lamina builds at the first use after
        # that, so adding n layers costs one build, not n.
        self._pending_build = self._core_net is not None or self.input_size is not None

    def build(self, input_shape: Any = None) -> None:
        """Creates the weights for ``input_shape = (None, features)`` or ``(features,)`` (or an
        image's ``(None, height, width[, channels])``); without it, the declared input shape is used."""
        self._require_idle("build")
        dims = self.input_dims
        if input_shape is not None:
            if not isinstance(input_shape, (tuple, list)) or not input_shape:
                raise ValueError(f"input_shape must be a tuple (None, features) or (features,), "
                                 f"received input_shape={check.describe(input_shape)}")
            shape = tuple(input_shape)
            sample = shape if len(shape) == 1 else shape[1:]  # the first of several entries is the batch
            dims = tuple(check.positive_int(d, f"input_shape[{i + len(shape) - len(sample)}]")
                         for i, d in enumerate(sample))
            if self.input_dims is not None and dims != self.input_dims:
                raise ValueError(f"input_shape={shape!r} disagrees with the declared input shape {self.input_dims}")
        if dims is None:
            raise ValueError("the model's input size is unknown: give the first layer input_shape=(features,), "
                             "call model.build((None, features)) or call fit")
        if not self._layers:
            raise ValueError("the model has no layers: add some before building it")
        self._busy = "build"  # the layers' weight views below must not start another build
        try:
            previous = [[w.copy() for w in layer.weights] if layer.built else [] for layer in self._layers]
            specs = self._core_specs(dims)
            net = self._new_core_network(dims, specs)
            self._check_initial_weights(net)
        finally:
            self._busy = None
        self._pending_build = False
        params = net.parameters()
        dense_iter = enumerate(net.dense_params())
        norm_iter = enumerate(net.norm_params())
        for layer in self._layers:
            if isinstance(layer, layers_module.Dense):
                index, d = next(dense_iter)
                layer._bind(params, {"inputs": d["inputs"], "kernel": d["kernel_offset"], "bias": d["bias_offset"]},
                            (net, index))
            elif isinstance(layer, normalization.LAYERS):
                index, entry = next(norm_iter)
                layer._bind(params, normalization.core_offsets(entry), (net, index))
            else:
                layer._bind(params, {})
        # Keep earlier weights where a rebuilt layer's shapes are unchanged.
        for layer, old in zip(self._layers, previous):
            if old and [w.shape for w in old] == [w.shape for w in layer.weights]:
                for view, value in zip(layer.weights, old):
                    view[...] = value
        if input_shape is not None and self.input_dims is None:
            self._input_layer = Input(shape=dims)
        net.num_threads = self._num_threads or 0
        if self._dtype_policy.bf16_products:
            net.bf16_products = True
        self._core_net = net
        net.set_gradient_hook(self._gradient_hook)
        if self.loss is not None:
            self._configure_core()

    def _new_core_network(self, dims: Tuple[int, ...], specs: List[Any]) -> Any:
        size = math.prod(dims)
        count = sum(math.prod(shape) for _, shape in self._weight_shapes(dims))
        nbytes = count * np.dtype(_DTYPES[self.dtype]).itemsize
        try:
            return _CORE[self.dtype](size, specs, self.seed)
        except MemoryError:
            raise MemoryError(f"building the model needs {count:,} {self.dtype} parameters ({nbytes / 2**30:.1f} GiB) "
                              f"plus as much again for gradients and optimizer state, and that memory is not "
                              f"available; use fewer or smaller layers") from None

    def _check_initial_weights(self, net: Any) -> None:
        """Rejects initializers whose values overflow the model's dtype (inf or NaN weights)."""
        if _core.all_finite(net.parameters()):
            return
        params = net.parameters()
        dense = iter(net.dense_params())
        for layer in self._layers:
            if not isinstance(layer, layers_module.Dense):
                continue
            d = next(dense)
            kernel = params[d["kernel_offset"]:d["kernel_offset"] + d["inputs"] * d["units"]]
            bias = params[d["bias_offset"]:d["bias_offset"] + d["units"]] if layer.use_bias else kernel[:0]
            for what, values, init in (("kernel", kernel, layer.kernel_initializer),
                                       ("bias", bias, layer.bias_initializer)):
                if not _core.all_finite(values):
                    raise ValueError(f"{what}_initializer={init!r} of layer {layer.name!r} gives values that "
                                     f"overflow {self.dtype} (inf or NaN weights); use a smaller scale")
        raise ValueError(f"the initial weights are not all finite in {self.dtype}")

    @property
    def trainable_weights(self) -> List[np.ndarray]:
        """Views of the weights the optimizer updates (the trainable layers'), as in Keras."""
        return [w for layer in self._layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self) -> List[np.ndarray]:
        """Views of the frozen layers' weights (``layer.trainable = False``)."""
        return [w for layer in self._layers for w in layer.non_trainable_weights]

    def set_gradient_hook(self, hook: Optional[Callable[[np.ndarray, int], None]]) -> None:
        """Calls ``hook(gradient, step)`` once per training step (fit, train_on_batch), after
        backward has formed the whole gradient block and before clipping and the update.

        ``gradient`` is a writable 1-D view of the block in the parameter layout (each Dense
        layer's kernel, then its bias; ``model._net.dense_params()`` gives the offsets), valid
        during the call: change it in place to change the step. ``step`` is the optimizer's
        iteration count before this update. An exception in the hook propagates out of fit with
        the parameters and optimizer state as they were before that step. ``None`` removes it.
        A hook makes small batches store their gradient instead of fusing it with the update
        (the same bits, somewhat slower at batch sizes up to 16). Survives rebuilds; not saved.
        """
        if hook is not None and not callable(hook):
            raise TypeError(f"hook must be callable or None, received hook={check.describe(hook)}")
        self._gradient_hook = hook
        if self._core_net is not None:
            self._core_net.set_gradient_hook(hook)

    def count_params(self) -> int:
        """The number of weights (the model must be built)."""
        return int(self._require_built("count_params").param_count)

    def summary(self, print_fn: Any = print) -> None:
        """Prints each layer's output shape and parameter count, Keras-style."""
        known = self.input_dims is not None
        rows = []
        counts: Dict[int, int] = {}
        for owner, shape in self._weight_shapes() if known else []:
            counts[id(owner)] = counts.get(id(owner), 0) + math.prod(shape)
        for layer, out in zip(self._layers, self._layer_dims() if known else [None] * len(self._layers)):
            n_params = counts.get(id(layer), 0)
            rows.append((f"{layer.name} ({type(layer).__name__})", layers_module.shape_text(out),
                         f"{n_params:,}" if known else "?"))
        total = sum(counts.values()) if known else None
        width = (max([34] + [len(row[0]) + 1 for row in rows]), 22, 12)  # long names keep their columns apart
        line = "-" * sum(width)
        print_fn(f'Model: "{self.name}"')
        print_fn(line)
        print_fn("".join(h.ljust(w) for h, w in zip(("Layer (type)", "Output Shape", "Param #"), width)))
        print_fn("=" * sum(width))
        for row in rows:
            print_fn("".join(c.ljust(w) for c, w in zip(row, width)))
        print_fn("=" * sum(width))
        print_fn(f"Total params: {total:,}" if total is not None else "Total params: ? (model not built)")
        if self._dtype_policy.bf16_products:
            print_fn(f"Dtype policy: {self._dtype_policy.name} ({self.dtype} weights, "
                     f"{self.compute_dtype} products)")
        print_fn(line)

    def _weight_shapes(self, input_dims: Optional[Tuple[int, ...]] = None) -> List[Tuple[Layer, Tuple[int, ...]]]:
        input_dims = input_dims or self.input_dims
        size = math.prod(input_dims) if input_dims else None
        out: List[Tuple[Layer, Tuple[int, ...]]] = []
        for layer, dims in zip(self._layers, self._layer_dims(input_dims)):
            out += [(layer, s) for s in layer.weight_shapes(size)]  # type: ignore[arg-type]
            size = math.prod(dims) if dims else size
        return out

    def regularization_loss(self) -> float:
        """The weight penalty (L1/L2 of every kernel) at the current weights; ``fit`` and
        ``evaluate`` include it in ``loss``."""
        return float(self._require_built("regularization_loss").regularization_penalty())

    def get_weights(self) -> List[np.ndarray]:
        """Copies of every weight array, layer by layer (kernel then bias)."""
        self._require_built("get_weights")
        return [w for layer in self._layers for w in layer.get_weights()]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Copies ``weights`` (as returned by ``get_weights``) into the model, after checking
        every shape; nothing changes if any array is wrong."""
        self._require_built("set_weights")
        views = [w for layer in self._layers for w in layer.weights]
        if not isinstance(weights, (list, tuple)) or len(weights) != len(views):
            got = len(weights) if isinstance(weights, (list, tuple)) else check.describe(weights)
            raise ValueError(f"weights must be a list of {len(views)} arrays, received {got}")
        arrays = []
        for i, (value, view) in enumerate(zip(weights, views)):
            arr = check.as_array(value, f"weights[{i}]")
            if arr.shape != view.shape:
                raise ValueError(f"weights[{i}] must have shape {view.shape}, received shape {arr.shape}")
            check.check_finite(arr, f"weights[{i}]")
            arrays.append(check.cast(arr, view.dtype, f"weights[{i}]"))
        for view, arr in zip(views, arrays):
            view[...] = arr

    # ----------------------------------------------------------------- compile
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, metrics: Optional[Sequence[Any]] = None,
                weighted_metrics: Optional[Sequence[Any]] = None) -> None:
        """Chooses the optimizer, the loss and the metrics (names or objects). Compiling again
        starts the optimizer's state afresh.

        As in Keras, ``metrics`` ignore sample and class weights while ``weighted_metrics``
        count each sample with its weight (a weighted metric whose name a plain one already
        has is logged as ``weighted_<name>``). The loss is always weighted."""
        self._require_idle("compile")
        if loss is None:
            raise ValueError("compile() needs a loss, received loss=None")
        opt = optimizers.get(optimizer)
        opt._check_owner(self)
        loss_obj = losses.get(loss)
        metric_objs = self._metric_list(metrics, "metrics")
        weighted_objs = self._metric_list(weighted_metrics, "weighted_metrics")
        plain = {m.name for m in metric_objs}
        weighted_names = [f"weighted_{m.name}" if m.name in plain else m.name for m in weighted_objs]
        metrics_module.scoring_mode(loss_obj.kind, max(self.output_size, 1), metric_objs + weighted_objs)  # validates
        self.optimizer, self.loss, self.metrics = opt, loss_obj, metric_objs
        self.weighted_metrics, self._weighted_names = weighted_objs, weighted_names
        if self.built:
            self._configure_core()

    @staticmethod
    def _metric_list(metrics: Any, name: str) -> List[metrics_module.Metric]:
        if metrics is None:
            return []
        if isinstance(metrics, (str, metrics_module.Metric)) or not isinstance(metrics, (list, tuple)):
            raise TypeError(f"{name} must be a list, received {name}={check.describe(metrics)}")
        objs = [metrics_module.get(m) for m in metrics]
        names = [m.name for m in objs]
        if len(set(names)) != len(names):
            raise ValueError(f"{name} must have distinct names, received {names}")
        return objs

    def _configure_core(self) -> None:
        assert self.loss is not None and self.optimizer is not None
        self._net.set_loss(self.loss._core_config())
        self._scoring = metrics_module.scoring_mode(self.loss.kind, self.output_size,
                                                    self.metrics + self.weighted_metrics)
        self._net.set_metric_mode(_core.MetricMode[self._scoring or "none"])
        self.optimizer._attach(self._net, self)

    # ----------------------------------------------------------------- data checks
    def _require_built(self, what: str) -> Any:
        check.require_built(self, what)
        return self._net

    def _require_compiled(self, what: str) -> None:
        check.require_compiled(self, what)

    def _features(self, x: Any, name: str = "x", dims: Optional[Tuple[int, ...]] = None,
                  defer_finite: bool = False) -> np.ndarray:
        """x as the core's (samples, values) block: samples of the model's input shape (or of
        ``dims`` before the model knows it), flattened without a copy when x is C-contiguous in
        the model's dtype."""
        dims = dims or self.input_dims
        for layer in self._layers:
            if isinstance(layer, normalization.Normalization):
                layer.require_adapted()
        if self.standardizer is None:
            return check.features(x, name, _DTYPES[self.dtype], dims, defer_finite)
        # Standardize in float64, then round once to the model's dtype.
        xs = check.features(x, name, np.float64, dims)
        return check.cast(self.standardizer.transform(xs), _DTYPES[self.dtype], name)

    def attach_standardizer(self, standardizer: Any) -> None:
        """Applies a fitted ``lm.data.Standardizer`` to every input of ``fit``, ``evaluate`` and
        ``predict`` (so raw data goes in), and saves it with the model."""
        if standardizer is not None:
            if not isinstance(standardizer, Standardizer):
                raise TypeError(f"standardizer must be a lamina.data.Standardizer, received {check.describe(standardizer)}")
            if getattr(standardizer, "mean_", None) is None:
                raise ValueError("the standardizer is not fitted: call standardizer.fit(x_train) first")
            n = standardizer.n_features_in_
            if self.input_size is not None and n != self.input_size:
                raise ValueError(f"the standardizer was fitted on {n} features, the model takes {self.input_size}")
        self.standardizer = standardizer

    def _targets(self, y: Any, n_rows: int, name: str = "y", dtype: Any = None) -> np.ndarray:
        """Targets shaped for the core (the loss checks them), in ``dtype`` (the model's by default)."""
        assert self.loss is not None
        return self.loss.targets(y, n_rows, self.output_size, _DTYPES[self.dtype] if dtype is None else dtype, name)

    def _dataset(self, x: Any, y: Any, xname: str = "x", yname: str = "y",
                 dims: Optional[Tuple[int, ...]] = None) -> Tuple[np.ndarray, np.ndarray]:
        xs = self._features(x, xname, dims)
        return xs, self._targets(y, xs.shape[0], yname)

    def _weights(self, sample_weight: Any, class_weight: Any, ys: np.ndarray) -> Optional[np.ndarray]:
        """Per-sample weights for targets ``ys`` (as the core takes them), or None."""
        assert self.loss is not None
        units = self.output_size
        return _weights.resolve(sample_weight, class_weight, ys, self.loss.kind == "sparse",
                                units if units > 1 else 2, _DTYPES[self.dtype])

    def _build_for(self, x: Any) -> None:
        """Builds an unbuilt model for samples shaped like x's (after x passed _features)."""
        if not self.built:
            self.build((None,) + tuple(np.shape(x)[1:]))

    def _logs(self, stats: Any, prefix: str = "") -> Dict[str, float]:
        # Keras's loss: the weighted sum of sample losses over the number of samples.
        logs = {prefix + "loss": stats.loss_sum / stats.samples if stats.samples else float("nan")}
        for m in self.metrics:
            logs[prefix + m.name] = m.result(stats, self._scoring)
        if self.weighted_metrics:
            tallies = metrics_module.WeightedTallies(stats)
            for m, name in zip(self.weighted_metrics, self._weighted_names):
                logs[prefix + name] = m.result(tallies, self._scoring)
        return logs

    # ----------------------------------------------------------------- training
    def fit(self, x: Any = None, y: Any = None, batch_size: Optional[int] = None, epochs: int = 1,
            verbose: int = 1, callbacks: Optional[Sequence[callbacks_module.Callback]] = None,
            validation_split: float = 0.0, validation_data: Optional[Tuple[Any, Any]] = None,
            shuffle: bool = True, initial_epoch: int = 0,
            track_gradient_norms: bool = False, sample_weight: Any = None,
            class_weight: Optional[Dict[int, float]] = None, steps_per_epoch: Optional[int] = None,
            validation_steps: Optional[int] = None, distributed: Any = None) -> callbacks_module.History:
        """Trains by minibatch gradient descent and returns a ``History``.

        ``batch_size`` defaults to 32; the last, shorter batch of an epoch is trained too.
        ``validation_split`` holds out the last fraction of ``x``/``y`` (before shuffling, as
        Keras does); ``validation_data=(x_val, y_val)`` gives the set explicitly. Each epoch
        draws a fresh shuffle from the model's seed, so the same seed gives the same weights.

        ``sample_weight`` (one non-negative weight per sample) or ``class_weight`` (``{class
        index: weight}``; classes left out weigh 1) weight each sample's loss, Keras's way: a
        batch's loss is the weighted sum over its samples divided by their number. Shuffling
        moves each weight with its sample; ``validation_data`` may be ``(x, y, sample_weight)``.

        ``x`` may also be a ``lamina.data.Dataset`` (``y`` then None: its batches are ``(x, y)``
        or ``(x, y, sample_weight)``) or a generator of such batches with ``steps_per_epoch``
        batches per epoch; ``validation_data`` likewise (a generator with ``validation_steps``).
        A background thread loads the next batches while the core trains the current ones, and the
        results do not depend on the timing. ``shuffle=True`` draws the order of a Dataset's
        batches from the model's seed; a generator's order is its own. A batch that fails the
        checks stops training with the batches before it trained (the first batch is checked
        before anything changes).

        ``track_gradient_norms=True`` records, per epoch, the mean L2 norm of each Dense
        kernel's gradient as ``history.history["gradient_norm/<layer name>"]``: the numbers that
        show vanishing or exploding gradients (``History.plot`` draws them).

        ``distributed=ctx`` (from ``lm.distributed.init()``) trains data-parallel over MPI:
        ``x``/``y`` are this rank's shard, ``batch_size`` is per rank and each step's gradient
        is the exact mean over every rank's batch; logs are global and files are written by
        rank 0 only. ``validation_split`` splits each rank's shard. See ``lamina.distributed``.
        """
        if distributed is not None and not isinstance(distributed, distributed_module.Context):
            raise TypeError(f"distributed must be the context lm.distributed.init() returns, received "
                            f"distributed={check.describe(distributed)}")
        # Distributed, a rank that refuses its arguments tells the others, which raise too: none is
        # left waiting in the first collective.
        together = distributed_module.checked_together(distributed) if distributed is not None else contextlib.nullcontext()
        with together:
            self._require_idle("fit")
            self._require_compiled("fit")
            source = _sources.optional(x, steps_per_epoch, "x", "steps_per_epoch")
            if source is not None:
                self._refuse_with_stream(y=y, batch_size=batch_size, sample_weight=sample_weight)
                if validation_split:
                    raise ValueError("validation_split needs arrays; with a Dataset or a generator give validation_data")
                if distributed is not None:
                    raise ValueError("distributed training takes arrays (each rank's shard), not a Dataset or a generator")
            elif steps_per_epoch is not None:
                raise ValueError("steps_per_epoch is for a Dataset or a generator x; with arrays an epoch is every "
                                 f"sample, received steps_per_epoch={check.describe(steps_per_epoch)}")
            batch_size = 32 if batch_size is None else check.positive_int(batch_size, "batch_size")
            epochs = check.non_negative_int(epochs, "epochs")
            initial_epoch = check.non_negative_int(initial_epoch, "initial_epoch")
            check.verbosity(verbose)
            for flag, value in (("shuffle", shuffle), ("track_gradient_norms", track_gradient_norms)):
                if not isinstance(value, (bool, np.bool_)):
                    raise TypeError(f"{flag} must be True or False, received {flag}={check.describe(value)}")
            validation_split = check.finite_float(validation_split, "validation_split", low=0.0, high=1.0, high_open=True)
            if isinstance(callbacks, callbacks_module.Callback) or not isinstance(callbacks, (list, tuple, type(None))):
                raise TypeError(f"callbacks must be a list of lamina Callback objects, received "
                                f"callbacks={check.describe(callbacks)}")
            callbacks = list(callbacks or [])
            for cb in callbacks:
                if not isinstance(cb, callbacks_module.Callback):
                    raise TypeError(f"callbacks must be lamina Callback objects, received {check.describe(cb)}")
            # Everything is checked before anything changes (the build below included).
            if source is not None:
                keys = source.keys(self.seed, self.epochs_trained, shuffle)
                first = self._first_batch(source, keys[0], class_weight)
                n_features = first[0].shape[1]
            else:
                xs, ys = self._dataset(x, y)
                ws = self._weights(sample_weight, class_weight, ys)
                n_features = xs.shape[1]
            val: Any = _sources.optional(validation_data, validation_steps, "validation_data", "validation_steps")
            if val is None and validation_data is not None:
                if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                    raise ValueError("validation_data must be a pair (x_val, y_val), a triple (x_val, y_val, "
                                     "sample_weight_val), a lamina.data.Dataset or a generator, received "
                                     f"validation_data={check.describe(validation_data)}")
                val_dims = self.input_dims or (tuple(np.shape(x)[1:]) if source is None else (n_features,))
                xv, yv = self._dataset(validation_data[0], validation_data[1], "validation_data[0]", "validation_data[1]",
                                       dims=val_dims)
                wv = None
                if len(validation_data) == 3 and validation_data[2] is not None:
                    wv = _weights.sample_weights(validation_data[2], xv.shape[0], _DTYPES[self.dtype],
                                                 "validation_data[2]")
                val = (xv, yv, wv)
            if source is None and validation_data is None and validation_split > 0:
                n_val = int(xs.shape[0] * validation_split)
                if n_val == 0 or n_val == xs.shape[0]:
                    raise ValueError(f"validation_split={validation_split} leaves no samples for "
                                     f"{'validation' if n_val == 0 else 'training'} out of {xs.shape[0]}")
                val = (xs[-n_val:], ys[-n_val:], None if ws is None else ws[-n_val:])
                xs, ys = np.ascontiguousarray(xs[:-n_val]), np.ascontiguousarray(ys[:-n_val])
                if ws is not None:
                    ws = np.ascontiguousarray(ws[:-n_val])
                    if not ws.any():
                        raise ValueError("sample_weight is all zero on the training part of validation_split: "
                                         "no training sample would count")
            if source is None:
                self._build_for(x)
            elif not self.built:
                self.build((None, n_features))

        history = callbacks_module.History()
        self.history = history
        net = self._net
        run = None
        if source is not None:
            steps = source.count
            params = {"epochs": epochs, "steps": steps, "batch_size": None, "samples": None, "verbose": verbose}
        else:
            n = xs.shape[0]
            steps = math.ceil(n / batch_size)
            if distributed is not None:
                run = distributed_module.Run(distributed, self, net, n, min(batch_size, training.MAX_BATCH))
                run.agree_on_setup({"batch_size": batch_size, "epochs": epochs, "initial_epoch": initial_epoch,
                                    "shuffle": bool(shuffle), "validation": val is not None,
                                    "weighted": ws is not None, "track_gradient_norms": bool(track_gradient_norms)})
                steps = run.steps
                if not distributed.is_root:
                    verbose = 0
                    callbacks = [cb for cb in callbacks if not cb.root_only]
            params = {"epochs": epochs, "steps": steps, "batch_size": batch_size, "samples": n, "verbose": verbose}
            batch_size = min(batch_size, training.MAX_BATCH)  # any larger batch holds every row as well
        extra = [ProgressDisplay(verbose)] if verbose else []
        cbs = callbacks_module.CallbackList([history, *callbacks, *extra], self, params)
        self.stop_training = False
        net.track_gradient_norms = bool(track_gradient_norms)
        loop = training.FitLoop(self, net, cbs, val, initial_epoch, epochs, bool(shuffle), bool(track_gradient_norms),
                                run)
        if source is not None:
            loop.fit(steps, lambda: loop.stream(source, keys, first, class_weight))
        else:
            loop.fit(steps, lambda: loop.arrays(xs, ys, ws, batch_size, steps))
        return history

    # ----------------------------------------------------------------- batch streams
    @staticmethod
    def _refuse_with_stream(**given: Any) -> None:
        for what, value in given.items():
            if value is not None:
                raise ValueError(f"{what} must be None when x is a Dataset or a generator (its batches carry x, y "
                                 f"and any sample weights), received {what}={check.describe(value)}")

    def _stream_batch(self, item: Any, where: str, class_weight: Any = None,
                      targets: bool = True) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
        """One delivered batch as the core takes it: (x, y, weights); without targets, (x, None, None)."""
        x, y, w = _sources.split_item(item, where, targets)
        if not targets:
            return self._features(x, f"{where} x"), None, None
        xs, ys = self._dataset(x, y, f"{where} x", f"{where} y")
        if w is not None:
            w = _weights.sample_weights(w, xs.shape[0], _DTYPES[self.dtype], f"{where} sample_weight")
        return xs, ys, self._weights(w, class_weight, ys)

    @staticmethod
    def _where(source: Any, key: int) -> str:
        return f"{source.name}[{key}]" if source.is_dataset else f"batch {key} of {source.name}"

    def _first_batch(self, source: Any, key: int, class_weight: Any) -> Tuple[Any, Any, Any]:
        try:
            return self._stream_batch(source.fetch(key), self._where(source, key), class_weight)
        except _prefetch.Exhausted as exc:
            raise ValueError(f"{exc}: it delivered no batch") from None

    def _batch_groups(self, source: Any, keys: List[int], class_weight: Any = None, first: Any = None,
                      targets: bool = True, most: int = 1) -> Generator[List[Tuple[Any, Any, Any]], None, None]:
        """The checked batches of ``keys`` in order (``first``: keys[0]'s, already loaded), loaded
        on a background thread while the ones before them train, in lists of up to ``most``: the
        next batch and those already loaded. The batches must all carry sample weights or none
        (weighted metrics would mean nothing otherwise)."""

        def load(key: int) -> Tuple[Any, Any, Any]:
            return self._stream_batch(source.fetch(key), self._where(source, key), class_weight, targets)

        weighted, position = None, 0
        rest = keys[1:] if first is not None else keys
        with _prefetch.Prefetcher(load, rest, depth=training.STREAM_AHEAD) as ahead:
            groups = ahead.groups(most)
            for group in itertools.chain([] if first is None else [[first]], groups):
                for batch in group:
                    has = batch[2] is not None
                    if weighted is not None and has != weighted:
                        raise ValueError(f"{self._where(source, keys[position])} {'has' if has else 'lacks'} sample "
                                         f"weights and the first batch {'lacks' if has else 'has'} them: give every "
                                         "batch (x, y, sample_weight) or none")
                    weighted, position = has, position + 1
                yield group

    def _evaluate_stream(self, source: Any, prefix: str = "", progress: Optional[PassProgress] = None) -> Dict[str, float]:
        net, stats = self._net, _core.BatchStats()
        keys = source.keys(self.seed, 0, shuffle=False)
        with contextlib.closing(self._batch_groups(source, keys)) as groups:
            try:
                batches = (batch for group in groups for batch in group)
                for done, (xs, ys, ws) in enumerate(batches, 1):
                    net.evaluate(stats, xs, ys, xs.shape[0], ws)
                    if progress is not None:
                        progress.update(done)
            except _prefetch.Exhausted as exc:
                warnings.warn(f"{exc}; the evaluation covers the batches it delivered", UserWarning, stacklevel=4)
        return self._logs(stats, prefix)

    def _predict_stream(self, source: Any, progress: Optional[PassProgress] = None) -> np.ndarray:
        net, parts = self._net, []
        keys = source.keys(self.seed, 0, shuffle=False)
        with contextlib.closing(self._batch_groups(source, keys, targets=False)) as groups:
            try:
                batches = (batch for group in groups for batch in group)
                for done, (xs, _, _) in enumerate(batches, 1):
                    part = net.predict(xs, max(1, min(xs.shape[0], training.MAX_BATCH)))  # GIL released
                    parts.append(part)
                    if progress is not None:
                        progress.update(done)
            except _prefetch.Exhausted as exc:
                warnings.warn(f"{exc}; the predictions cover the batches it delivered", UserWarning, stacklevel=4)
        if not parts:
            return np.empty((0, self.output_size), dtype=_DTYPES[self.dtype])
        return np.concatenate(parts)

    def train_on_batch(self, x: Any, y: Any, sample_weight: Any = None, class_weight: Optional[Dict[int, float]] = None,
                       return_dict: bool = False) -> Union[float, List[float], Dict[str, float]]:
        """One optimizer step on exactly this batch (online learning, Keras's name); returns the
        batch's loss (and metrics) computed before the update, as ``evaluate`` shapes them.
        ``sample_weight`` / ``class_weight`` weight it as in ``fit``."""
        self._require_compiled("train_on_batch")
        xs, ys = self._dataset(x, y)
        ws = self._weights(sample_weight, class_weight, ys)
        self._build_for(x)
        stats = _core.BatchStats()
        self._net.train_batches(stats, xs, ys, None, 0, xs.shape[0], 1, ws)
        return self._shape_logs(self._logs(stats), return_dict)

    def test_on_batch(self, x: Any, y: Any, sample_weight: Any = None,
                      return_dict: bool = False) -> Union[float, List[float], Dict[str, float]]:
        """Loss (and metrics) on this batch, without updating anything."""
        self._require_compiled("test_on_batch")
        self._require_built("test_on_batch")
        xs, ys = self._dataset(x, y)
        ws = self._weights(sample_weight, None, ys)
        return self._shape_logs(self._evaluate_arrays(xs, ys, xs.shape[0], weights=ws), return_dict)

    @staticmethod
    def _shape_logs(logs: Dict[str, float], return_dict: bool) -> Union[float, List[float], Dict[str, float]]:
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def _evaluate_stats(self, xs: np.ndarray, ys: np.ndarray, batch_size: int,
                        progress: Optional[PassProgress] = None, weights: Optional[np.ndarray] = None) -> Any:
        net, stats = self._net, _core.BatchStats()
        batch_size = min(batch_size, training.MAX_BATCH)
        training.in_chunks(xs.shape[0], batch_size,
                           lambda a, b: net.evaluate(stats, xs[a:b], ys[a:b], batch_size,
                                                     None if weights is None else weights[a:b]), progress)
        if xs.shape[0] == 0:
            net.evaluate(stats, xs, ys, batch_size)
        return stats

    def _evaluate_arrays(self, xs: np.ndarray, ys: np.ndarray, batch_size: int, prefix: str = "",
                         progress: Optional[PassProgress] = None, weights: Optional[np.ndarray] = None) -> Dict[str, float]:
        return self._logs(self._evaluate_stats(xs, ys, batch_size, progress, weights), prefix)

    def evaluate(self, x: Any = None, y: Any = None, batch_size: Optional[int] = None, verbose: int = 0,
                 sample_weight: Any = None, steps: Optional[int] = None,
                 return_dict: bool = False) -> Union[float, List[float], Dict[str, float]]:
        """The loss (with any regularization penalty) and metrics on ``x``, ``y``: a float
        without metrics, else ``[loss, *metrics]`` (or a dict with ``return_dict=True``).
        Dropout is off. ``sample_weight`` weights the loss and the ``weighted_metrics`` as in
        ``fit``. ``x`` may be a Dataset or a generator (with ``steps`` batches), as in ``fit``."""
        self._require_compiled("evaluate")
        self._require_built("evaluate")
        check.verbosity(verbose)
        source = _sources.optional(x, steps, "x", "steps")
        if source is not None:
            self._refuse_with_stream(y=y, batch_size=batch_size, sample_weight=sample_weight)
            progress = PassProgress(verbose, source.count, "evaluate", unit="batch")
            logs = self._evaluate_stream(source, progress=progress)
            progress.close(logs)
            return self._shape_logs(logs, return_dict)
        batch_size = 256 if batch_size is None else check.positive_int(batch_size, "batch_size")
        xs, ys = self._dataset(x, y)
        ws = self._weights(sample_weight, None, ys)
        progress = PassProgress(verbose, xs.shape[0], "evaluate")
        logs = self._evaluate_arrays(xs, ys, batch_size, progress=progress, weights=ws)
        progress.close(logs)
        return self._shape_logs(logs, return_dict)

    def predict(self, x: Any, batch_size: Optional[int] = None, verbose: int = 0,
                steps: Optional[int] = None) -> np.ndarray:
        """The network's outputs for ``x``, shape ``(samples, units)``; dropout is off.
        ``batch_size`` (default 1024) bounds the memory used at once. ``verbose=1`` shows a
        progress bar on a terminal, ``2`` one line at the end. The pass runs in chunks, so
        Ctrl-C stops it promptly. ``x`` may be a Dataset or a generator (with ``steps``
        batches) of ``x`` batches, or of ``(x, y[, w])`` batches whose ``x`` is used; the
        outputs are concatenated in batch order."""
        net = self._require_built("predict")
        check.verbosity(verbose)
        source = _sources.optional(x, steps, "x", "steps")
        if source is not None:
            self._refuse_with_stream(batch_size=batch_size)
            progress = PassProgress(verbose, source.count, "predict", unit="batch")
            out_stream = self._predict_stream(source, progress)
            progress.close()
            return out_stream
        batch_size = 1024 if batch_size is None else check.positive_int(batch_size, "batch_size")
        batch_size = min(batch_size, training.MAX_BATCH)
        # The core checks each batch for NaN / infinity just before using it (x is read from
        # memory once instead of twice); if it finds one, check_finite says where.
        xs = self._features(x, defer_finite=True)
        out = np.empty((xs.shape[0], self.output_size), dtype=xs.dtype)
        progress = PassProgress(verbose, xs.shape[0], "predict")

        def run(start: int, stop: int) -> None:
            part = net.predict(xs[start:stop], batch_size, check_finite=True)
            if part is None:
                check.check_finite(xs, "x")
                raise RuntimeError("internal error: the core found a NaN or infinity in x that check_finite did not")
            out[start:stop] = part

        training.in_chunks(xs.shape[0], batch_size, run, progress)
        progress.close()
        return out

    def __call__(self, x: Any, training: bool = False) -> np.ndarray:
        """The outputs for ``x`` in one pass, as Keras's ``model(x, training=...)``. With
        ``training=True`` dropout, noise and augmentation act as in ``fit``, drawn at the model's
        current training step, which does not advance (so two calls give the same result); the
        weights do not change. ``predict`` is the batched, inference-only way."""
        net = self._require_built("__call__")
        if not isinstance(training, (bool, np.bool_)):
            raise TypeError(f"training must be True or False, received training={check.describe(training)}")
        return net.forward(self._features(x), bool(training))

    # ----------------------------------------------------------------- state and files
    def get_state(self) -> Dict[str, Any]:
        """Everything that decides how training continues, as plain data: ``params`` (the flat
        parameter block, a copy), ``optimizer_slots`` (copies of the optimizer's state vectors),
        ``iterations`` (optimizer steps), ``steps`` (training steps: the dropout counter) and
        ``epochs_trained``. ``set_state`` puts it back; io, gradient checking and the scikit-learn
        estimators use these two instead of the model's internals."""
        net = self._require_built("get_state")
        return {
            "params": net.parameters().copy(),
            "optimizer_slots": [s for s in net.optimizer_slots()],
            "iterations": int(net.iterations),
            "steps": int(net.steps),
            "epochs_trained": int(self.epochs_trained),
        }

    def set_state(self, state: Dict[str, Any]) -> None:
        """Inverse of ``get_state`` (the model must be built and compiled alike); checks every
        size before changing anything."""
        net = self._require_built("set_state")
        params = np.asarray(state["params"])
        if params.shape != (net.param_count,):
            raise ValueError(f"saved weights hold {params.size} values, the model has {net.param_count}")
        slots = state.get("optimizer_slots")
        for what, values in [("params", params)] + [(f"optimizer_slots[{i}]", s) for i, s in enumerate(slots or [])]:
            if np.asarray(values).dtype.kind != "f" or not _core.all_finite(np.asarray(values)):
                raise ValueError(f"state[{what!r}] must hold finite floats (no NaN or infinity)")
        if slots is not None:
            net.set_optimizer_slots(list(slots))
            net.iterations = int(state["iterations"])
        net.parameters()[...] = params
        net.steps = int(state["steps"])
        self.epochs_trained = int(state["epochs_trained"])

    def differentiable_tensors(self) -> List[Tuple[str, str, int, Tuple[int, ...]]]:
        """``(layer name, tensor name, offset in the flat parameter block, shape)`` for every tensor
        the loss is differentiated by: Dense kernels and biases, normalization gammas and betas
        (not the moving statistics, which no gradient moves)."""
        self._require_built("differentiable_tensors")
        out = []
        for layer in self._layers:
            offsets = layer._offsets or {}
            if isinstance(layer, layers_module.Dense):
                out.append((layer.name, "kernel", offsets["kernel"], tuple(layer.kernel.shape)))
                if layer.use_bias:
                    out.append((layer.name, "bias", offsets["bias"], (layer.units,)))
            elif isinstance(layer, normalization.LAYERS):
                out += [(layer.name, key, offsets[key], (offsets["features"],)) for key in ("gamma", "beta")
                        if offsets[key] >= 0]
        return out

    def float64_network(self) -> Any:
        """A new float64 core network (``_core.Network64``) with this model's layers, loss, frozen
        normalization layers and state (parameters and the step counter, so its random layers make
        the draws the next training step would): what gradient checking differentiates, without
        touching the model."""
        check.require_compiled(self, "float64_network")
        state = self.get_state()
        assert self.input_dims is not None and self.input_size is not None and self.loss is not None  # built, compiled
        net = _core.Network64(self.input_size, self._core_specs(self.input_dims), self.seed)
        net.parameters()[...] = state["params"]
        # A frozen normalization layer (and Normalization, always) normalizes as at inference in fit too.
        norms = [layer for layer in self._layers if isinstance(layer, normalization.LAYERS)]
        for index, layer in enumerate(norms):
            net.set_norm_trainable(index, layer.trainable)
        net.steps = state["steps"]
        net.set_loss(self.loss._core_config())
        return net

    def save(self, path: Any) -> None:
        """Writes the architecture, weights, optimizer state and any attached standardizer to one
        file (no pickle), atomically; ``lm.load_model(path)`` reads it back."""
        saving.save_model(self, path)

    def export(self, path: Any, format: str = "onnx", opset: int = 17) -> Any:
        """Writes the model for inference elsewhere. ``format="onnx"`` (the only one) calls
        ``lamina.onnx.export(self, path, opset)`` and returns the ``onnx.ModelProto``; it needs
        ``pip install lamina[onnx]``."""
        if format != "onnx":
            raise ValueError(f"format must be 'onnx', received format={check.describe(format)}")
        return onnx_export.export(self, path, opset=opset)

    def compile_config(self) -> Optional[Dict[str, Any]]:
        """The compile() arguments as JSON-able data, or None before compile."""
        if self.loss is None or self.optimizer is None:
            return None
        return {"optimizer": self.optimizer.get_config(), "loss": self.loss.get_config(),
                "metrics": [metrics_module.serialize(m) for m in self.metrics],
                "weighted_metrics": [metrics_module.serialize(m) for m in self.weighted_metrics]}

    # ----------------------------------------------------------------- config
    def get_config(self) -> Dict[str, Any]:
        """The architecture as JSON-able data; ``Sequential.from_config`` rebuilds it."""
        layers = []
        if self._input_layer is not None:
            layers.append({"class_name": "Input", "config": self._input_layer.get_config()})
        layers += [{"class_name": type(l).__name__, "config": l.get_config()} for l in self._layers]
        return {"name": self.name, "seed": self.seed, "dtype": self._dtype_policy.name, "layers": layers}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Sequential":
        model = cls(seed=config.get("seed"), dtype=config.get("dtype", "float32"), name=config.get("name"))
        for entry in config["layers"]:
            model.add(layers_module.deserialize(entry["class_name"], entry["config"]))
        if model.input_size is not None:
            model.build()
        return model

    def __repr__(self) -> str:
        return (f"Sequential(name={self.name!r}, layers={self._layers!r}, dtype={self._dtype_policy.name!r}, "
                f"built={self.built}, compiled={self.loss is not None})")


def load_model(path: Any, *, max_layers: int = saving.MAX_LAYERS, max_units: int = saving.MAX_UNITS,
               max_params: int = saving.MAX_PARAMS) -> Sequential:
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
    return saving.read_model(Sequential, path, max_layers=max_layers, max_units=max_units, max_params=max_params)
