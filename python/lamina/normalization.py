"""Normalization layers, with Keras's names, arguments and defaults: ``BatchNormalization``,
``LayerNormalization`` and ``Normalization`` (input standardization inside the model).

All three normalize the flat sample (the core's ``(batch, features)`` block: Keras's last axis for
flat inputs) and are computed in the C++ core, forward and backward. Their weights live in the
model's parameter block, so optimizers, ``trainable``, saving, loading and distributed broadcast
cover them; BatchNormalization's moving statistics sit there too, outside every optimizer.

>>> model = lm.Sequential([lm.layers.Dense(8, input_shape=(4,)), BatchNormalization(),
...                        lm.layers.Activation("relu"), lm.layers.Dense(2)], seed=0)
>>> [w.shape for w in model.layers[1].weights]
[(8,), (8,), (8,), (8,)]
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from lamina import _core
from lamina import _validation as check
from lamina._validation import describe, finite_float
from lamina.data import Standardizer, guarded_scale
from lamina.layers import Layer

_WEIGHT_KEYS = ("gamma", "beta", "moving_mean", "moving_variance")


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, received {name}={describe(value)}")
    return bool(value)


def _epsilon(value: Any) -> float:
    return finite_float(value, "epsilon", low=0.0, low_open=True)


class _Normalizing(Layer):
    """What the three share: per-feature vectors in the parameter block, found by offset."""

    _core_trainable = "set_norm_trainable"
    _trained_keys: Tuple[str, ...] = ("gamma", "beta")

    center: bool
    scale: bool

    def _present(self) -> List[str]:
        """The weight names this layer has, in Keras's order."""
        return []

    @property
    def gamma(self) -> Optional[np.ndarray]:
        """The ``(features,)`` scale (a view into the model's parameters), or None with ``scale=False``."""
        self._build_owner()
        return self._vector("gamma") if self.scale else None

    @property
    def beta(self) -> Optional[np.ndarray]:
        """The ``(features,)`` offset view, or None with ``center=False``."""
        self._build_owner()
        return self._vector("beta") if self.center else None

    def weight_shapes(self, input_size: int) -> List[Tuple[int, ...]]:
        return [(input_size,)] * len(self._present())

    def _vector(self, key: str) -> np.ndarray:
        if self._params is None or self._offsets is None:
            raise ValueError(f"layer {self.name!r} has no weights yet: build the model first "
                             f"(give input_shape, call model.build(), fit or predict)")
        start = self._offsets[key]
        return self._params[start:start + self._offsets["features"]]

    @property
    def weights(self) -> List[np.ndarray]:
        self._build_owner()
        return [self._vector(k) for k in self._present()] if self.built else []

    @property
    def trainable_weights(self) -> List[np.ndarray]:
        self._build_owner()
        if not (self.built and self._trainable):
            return []
        return [self._vector(k) for k in self._present() if k in self._trained_keys]

    @property
    def non_trainable_weights(self) -> List[np.ndarray]:
        trained = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trained]


class BatchNormalization(_Normalizing):
    """Normalizes each feature over the batch: ``gamma * (x - mean) / sqrt(var + epsilon) + beta``.

    In training (``fit``, ``model(x, training=True)``) ``mean`` and ``var`` are the batch's
    (biased variance, as Keras), and each training step updates
    ``moving = moving * momentum + batch * (1 - momentum)``; at inference (``predict``,
    ``evaluate``) the moving statistics are used. With ``trainable = False`` the layer runs in
    inference mode in training too, as in Keras. A zero-row step (distributed training) leaves
    the moving statistics alone. In data-parallel training each rank normalizes with its own
    batch's statistics (as Keras and PyTorch do without SyncBatchNorm).

    >>> BatchNormalization()
    BatchNormalization(momentum=0.99, epsilon=0.001)
    """

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, center: bool = True, scale: bool = True,
                 name: Optional[str] = None, input_shape: Any = None) -> None:
        self.momentum = finite_float(momentum, "momentum", low=0.0, high=1.0)
        self.epsilon = _epsilon(epsilon)
        self.center = _flag(center, "center")
        self.scale = _flag(scale, "scale")
        super().__init__(name=name, input_shape=input_shape)

    _fixed_after_build = ("input_size", "momentum", "epsilon", "center", "scale")

    def _present(self) -> List[str]:
        return (["gamma"] if self.scale else []) + (["beta"] if self.center else []) + ["moving_mean",
                                                                                        "moving_variance"]

    def _core_spec(self, input_dims: Tuple[int, ...]) -> _core.LayerSpec:
        return _core.LayerSpec.batch_normalization(momentum=self.momentum, epsilon=self.epsilon,
                                                   center=self.center, scale=self.scale)

    @property
    def moving_mean(self) -> np.ndarray:
        self._build_owner()
        return self._vector("moving_mean")

    @property
    def moving_variance(self) -> np.ndarray:
        self._build_owner()
        return self._vector("moving_variance")

    def inference_affine(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(a, b)`` with ``layer(x) == a * x + b`` at inference, in float64 (for folding)."""
        mean = self.moving_mean.astype(np.float64)
        a = 1.0 / np.sqrt(self.moving_variance.astype(np.float64) + self.epsilon)
        if self.scale:
            a = a * self.gamma.astype(np.float64)  # type: ignore[union-attr]
        b = -mean * a
        if self.center:
            b = b + self.beta.astype(np.float64)  # type: ignore[union-attr]
        return a, b

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(momentum=self.momentum, epsilon=self.epsilon, center=self.center, scale=self.scale)
        return config

    def __repr__(self) -> str:
        return f"BatchNormalization(momentum={self.momentum}, epsilon={self.epsilon})"


class LayerNormalization(_Normalizing):
    """Normalizes each sample over its features: ``gamma * (x - mean) / sqrt(var + epsilon) + beta``
    with the sample's own mean and (biased) variance, the same in training and at inference.

    >>> LayerNormalization()
    LayerNormalization(epsilon=0.001)
    """

    def __init__(self, epsilon: float = 1e-3, center: bool = True, scale: bool = True, name: Optional[str] = None,
                 input_shape: Any = None) -> None:
        self.epsilon = _epsilon(epsilon)
        self.center = _flag(center, "center")
        self.scale = _flag(scale, "scale")
        super().__init__(name=name, input_shape=input_shape)

    _fixed_after_build = ("input_size", "epsilon", "center", "scale")

    def _present(self) -> List[str]:
        return (["gamma"] if self.scale else []) + (["beta"] if self.center else [])

    def _core_spec(self, input_dims: Tuple[int, ...]) -> _core.LayerSpec:
        return _core.LayerSpec.layer_normalization(epsilon=self.epsilon, center=self.center, scale=self.scale)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(epsilon=self.epsilon, center=self.center, scale=self.scale)
        return config

    def __repr__(self) -> str:
        return f"LayerNormalization(epsilon={self.epsilon})"


class Normalization(_Normalizing):
    """Standardizes each input feature inside the model, as Keras's ``Normalization``:
    ``(x - mean) / sqrt(variance)``, with ``mean`` and ``variance`` learned by ``adapt(x)`` (or
    given). It shares ``lm.data.Standardizer``'s statistics and guard: a feature whose standard
    deviation is below ``epsilon`` (or that is constant) gets variance 1, so it maps to 0, not to
    inf. Its statistics are weights of the model (never trained), saved and loaded exactly, and
    also written into ``get_config()`` once known, as Keras does with given ``mean``/``variance``.

    >>> layer = Normalization()
    >>> layer.adapt(np.array([[1.0, 10.0], [3.0, 10.0]]))
    >>> model = lm.Sequential([lm.layers.Input(shape=(2,)), layer], seed=0, dtype="float64")
    >>> model.predict(np.array([[2.0, 10.0], [3.0, 11.0]]))
    array([[0., 0.],
           [1., 1.]])
    """

    _trained_keys = ()

    def __init__(self, mean: Any = None, variance: Any = None, epsilon: float = 1e-7, name: Optional[str] = None,
                 input_shape: Any = None) -> None:
        self.epsilon = finite_float(epsilon, "epsilon", low=0.0)
        self.center = self.scale = False
        self._statistics: Optional[Tuple[np.ndarray, np.ndarray]] = None  # float64 mean, guarded variance
        super().__init__(name=name, input_shape=input_shape)
        if (mean is None) != (variance is None):
            raise ValueError(f"Normalization takes both mean and variance or neither, received "
                             f"mean={describe(mean)}, variance={describe(variance)}")
        if mean is not None:
            m = check.as_array(mean, "mean").astype(np.float64).ravel()
            v = check.as_array(variance, "variance").astype(np.float64).ravel()
            if m.size == 0 or v.shape != m.shape:
                raise ValueError(f"mean and variance must be non-empty and the same size, received sizes "
                                 f"{m.size} and {v.size}")
            if not (np.isfinite(m).all() and np.isfinite(v).all() and (v >= 0).all()):
                raise ValueError("mean must be finite and variance finite and non-negative, received "
                                 f"mean={describe(mean)}, variance={describe(variance)}")
            self._set_statistics(m, guarded_scale(np.sqrt(v), self.epsilon) ** 2)

    _fixed_after_build = ("input_size", "epsilon")
    # The core's epsilon: the variance is guarded already, so sqrt(variance + this) == sqrt(variance).
    _CORE_EPSILON = 1e-300

    @property
    def is_adapted(self) -> bool:
        return self._statistics is not None

    def adapt(self, x: Any) -> None:
        """Learns the per-feature mean and variance of ``x`` (samples, *sample shape) in float64."""
        dims = self.input_dims
        if dims is None and self._offsets is not None:
            dims = (self._offsets["features"],)
        data = check.features(x, "x", np.float64, dims)
        if self._offsets is not None and data.shape[1] != self._offsets["features"]:
            raise ValueError(f"x must have {self._offsets['features']} features per sample (the layer's input "
                             f"size), received shape {np.shape(x)}")
        fitted = Standardizer(self.epsilon).fit(data)
        assert fitted.mean_ is not None and fitted.scale_ is not None
        self._set_statistics(fitted.mean_, fitted.scale_ ** 2)

    def _set_statistics(self, mean: np.ndarray, variance: np.ndarray) -> None:
        if self._offsets is not None and mean.size != self._offsets["features"]:
            raise ValueError(f"layer {self.name!r} takes {self._offsets['features']} features, received statistics "
                             f"for {mean.size}")
        self._statistics = (mean, variance)
        self._write_statistics()

    def _write_statistics(self) -> None:
        if self._statistics is not None and self._params is not None:
            self._vector("moving_mean")[...] = self._statistics[0]
            self._vector("moving_variance")[...] = self._statistics[1]

    def _bind(self, params: Optional[np.ndarray], offsets: Optional[Dict[str, Any]], core: Any = None) -> None:
        super()._bind(params, offsets, core)
        if core is not None:
            core[0].set_norm_trainable(core[1], False)  # always the inference map: it never learns
        if self._statistics is not None and offsets and self._statistics[0].size != offsets["features"]:
            raise ValueError(f"layer {self.name!r} was adapted to {self._statistics[0].size} features, it receives "
                             f"{offsets['features']}")
        self._write_statistics()

    @property
    def trainable(self) -> bool:
        return False

    @trainable.setter
    def trainable(self, value: bool) -> None:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"trainable must be True or False, received trainable={describe(value)}")

    def _present(self) -> List[str]:
        return ["moving_mean", "moving_variance"]

    def _core_spec(self, input_dims: Tuple[int, ...]) -> _core.LayerSpec:
        return _core.LayerSpec.batch_normalization(momentum=1.0, epsilon=self._CORE_EPSILON, center=False,
                                                   scale=False)

    def output_dims(self, input_dims: Tuple[int, ...]) -> Tuple[int, ...]:
        return input_dims

    def require_adapted(self) -> None:
        if not self.is_adapted:
            raise ValueError(f"Normalization layer {self.name!r} is not adapted: call layer.adapt(x_train) (or give "
                             f"mean= and variance=) before fit, predict or evaluate")

    def inference_affine(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(a, b)`` with ``layer(x) == a * x + b``, in float64."""
        a = 1.0 / np.sqrt(self.weights[1].astype(np.float64))
        return a, -self.weights[0].astype(np.float64) * a

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["epsilon"] = self.epsilon
        if self.is_adapted:
            mean, variance = (self.weights if self.built else self._statistics) or ((), ())
            config.update(mean=[float(v) for v in mean], variance=[float(v) for v in variance])
        return config

    def __repr__(self) -> str:
        return f"Normalization(adapted={self.is_adapted})"


def core_offsets(entry: Dict[str, int]) -> Dict[str, int]:
    """The layer's offsets from one ``net.norm_params()`` entry."""
    keys = {"gamma": "gamma_offset", "beta": "beta_offset", "moving_mean": "mean_offset",
            "moving_variance": "var_offset"}
    offsets = {k: int(entry[v]) for k, v in keys.items()}
    offsets["features"] = int(entry["features"])
    return offsets


LAYERS = (BatchNormalization, LayerNormalization, Normalization)
