"""Layers: ``Dense``, ``Dropout``, ``Activation``, ``Flatten``, ``Reshape`` and ``Input``; the
augmentation layers live in ``lamina.augmentation`` and are re-exported here.

A layer describes itself; its numbers live in the model's C++ parameter block, and
``layer.kernel`` / ``layer.bias`` are numpy views into it (no copy) once the model is built.
Weights are built lazily from the input size, as in Keras.

Samples may be shaped (``Input(shape=(28, 28))``); the core sees each one flattened, row-major,
so ``Flatten`` and ``Reshape`` only change the shape the next layer is told about.
"""

from __future__ import annotations

import itertools
import math
import re
import weakref
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from lamina import _core, activations, initializers, regularizers
from lamina._validation import describe, finite_float, positive_int

_counters: Dict[str, "itertools.count[int]"] = {}


def _auto_name(prefix: str) -> str:
    n = next(_counters.setdefault(prefix, itertools.count()))
    return prefix if n == 0 else f"{prefix}_{n}"


class ReadOnlyAfterBuildError(AttributeError, ValueError):
    """Setting an attribute that the built weights were made from (an AttributeError, as for
    any read-only attribute, and a ValueError, as lamina reports misuse).

    >>> model = lm.Sequential([Dense(4, input_shape=(3,))])
    >>> try:
    ...     model.layers[0].units = 8
    ... except ReadOnlyAfterBuildError as exc:
    ...     print(str(exc).split(";")[0])
    units of layer 'dense...' cannot change after the model is built (its weights were made from it)
    """


def _dims(shape: Any, name: str = "input_shape") -> Tuple[int, ...]:
    """A sample shape (without the batch axis) as a tuple of positive ints."""
    dims = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    if not dims:
        raise ValueError(f"{name} must have at least one dimension, received {name}={dims!r}")
    return tuple(positive_int(d, f"{name}[{i}]") for i, d in enumerate(dims))


def _input_dims(input_shape: Any) -> Optional[Tuple[int, ...]]:
    return None if input_shape is None else _dims(input_shape)


def shape_text(dims: Optional[Tuple[int, ...]]) -> str:
    """``(None, 28, 28)``: a batch of samples of shape ``dims`` (``?`` when unknown).

    >>> shape_text((28, 28)), shape_text(None)
    ('(None, 28, 28)', '(None, ?)')
    """
    return "(None, ?)" if dims is None else "(" + ", ".join(["None"] + [str(d) for d in dims]) + ")"


class Layer:
    """Base class: a name, an optional input size, and a binding to the built network.

    A layer belongs to one model. Once that model is built, the attributes that shape the
    network (``_fixed_after_build``: units, activation, initializers, regularizer, rate, input
    size) are read-only: the weights were made from them, and a file must describe what trained.

    >>> layer = lm.layers.Layer(name="block", input_shape=(5,))
    >>> layer.get_config(), layer.weights
    ({'name': 'block', 'input_shape': [5]}, [])
    """

    def __init__(self, name: Optional[str] = None, input_shape: Any = None) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, received name={describe(name)}")
        self.name = name or _auto_name(self._prefix())
        self.input_dims = _input_dims(input_shape)
        if self.input_dims is not None:  # a declared shape the layer cannot take fails here, not at build
            try:
                self.output_dims(self.input_dims)
            except ValueError as exc:
                raise ValueError(f"input_shape={self.input_dims!r} does not suit this layer: {exc}") from None
        self._params: Optional[np.ndarray] = None  # the model's parameter block, once built
        self._offsets: Optional[Dict[str, int]] = None
        self._model: Any = None  # weak reference to the model that holds this layer
        self._trainable = True
        self._core: Any = None  # (network, dense index) once built, for trainable

    _fixed_after_build: Tuple[str, ...] = ("input_size", "input_dims")
    _core_trainable = "set_trainable"  # the network method that freezes this kind of layer

    @property
    def input_size(self) -> Optional[int]:
        """The number of values in one input sample (the product of ``input_dims``), or None."""
        return None if self.input_dims is None else math.prod(self.input_dims)

    @input_size.setter
    def input_size(self, value: Optional[int]) -> None:
        self.input_dims = _input_dims(value)

    def __setattr__(self, key: str, value: Any) -> None:
        if key in self._fixed_after_build and getattr(self, "_params", None) is not None:
            raise ReadOnlyAfterBuildError(f"{key} of layer {self.name!r} cannot change after the model is built (its weights "
                                 f"were made from it); build a new layer with {key}={describe(value)}")
        if key == "name" and getattr(self, "_model", None) is not None and self._owner() is not None:
            raise ReadOnlyAfterBuildError(f"the name of layer {self.name!r} cannot change while a model holds it "
                                          f"(names are unique within a model, as in Keras)")
        super().__setattr__(key, value)

    def _owner(self) -> Any:
        return self._model() if self._model is not None else None

    def _build_owner(self) -> None:
        """The owning model builds lazily (after add); reading weights is a first use."""
        owner = self._owner()
        if owner is not None:
            owner._build_if_pending()

    def _claim(self, model: Any) -> None:
        """Makes ``model`` this layer's owner; a layer lives in one model at a time."""
        owner = self._owner()
        if owner is not None and owner is not model:
            raise ValueError(f"layer {self.name!r} already belongs to model {owner.name!r}; a layer holds one "
                             f"model's weights: create a new layer (for example "
                             f"{type(self).__name__}.from_config(layer.get_config()))")
        self._model = weakref.ref(model)

    @classmethod
    def _prefix(cls) -> str:
        return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()  # Keras's names: RandomFlip -> random_flip

    @property
    def built(self) -> bool:
        return self._params is not None

    # What the C++ core needs to know about this layer, given its input sample shape (None:
    # nothing, e.g. Input, Flatten).
    def _core_spec(self, input_dims: Tuple[int, ...]) -> Optional[_core.LayerSpec]:
        return None

    def output_dims(self, input_dims: Tuple[int, ...]) -> Tuple[int, ...]:
        """The output sample shape for inputs of shape ``input_dims`` (no batch axis); raises
        ValueError when the layer cannot take that shape."""
        return input_dims

    def weight_shapes(self, input_size: int) -> List[Tuple[int, ...]]:
        return []

    def _bind(self, params: Optional[np.ndarray], offsets: Optional[Dict[str, Any]],
              core: Any = None) -> None:
        self._params, self._offsets, self._core = params, offsets, core
        if core is not None:
            getattr(core[0], self._core_trainable)(core[1], self._trainable)

    @property
    def trainable(self) -> bool:
        """Keras's switch: ``False`` freezes this layer's weights. No optimizer updates them
        (no step, no momentum or Adam drift, no weight decay) while gradients still flow through
        the layer to the ones below. Unlike Keras, a change takes effect at once, on the next
        training step, without recompiling; it is not saved with the model."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"trainable must be True or False, received trainable={describe(value)}")
        self._trainable = bool(value)
        if self._core is not None:
            getattr(self._core[0], self._core_trainable)(self._core[1], self._trainable)

    @property
    def trainable_weights(self) -> List[np.ndarray]:
        """The weights an optimizer updates: ``weights`` when trainable, else none."""
        return self.weights if self._trainable else []

    @property
    def non_trainable_weights(self) -> List[np.ndarray]:
        return [] if self._trainable else self.weights

    @property
    def weights(self) -> List[np.ndarray]:
        """Views of this layer's weights (empty for layers without any)."""
        return []

    def get_weights(self) -> List[np.ndarray]:
        """Copies of this layer's weights."""
        return [w.copy() for w in self.weights]

    def get_config(self) -> Dict[str, Any]:
        config: Dict[str, Any] = {"name": self.name}
        if self.input_dims is not None:
            config["input_shape"] = list(self.input_dims)
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Layer":
        return cls(**config)


class Input(Layer):
    """Declares the shape of one input sample: ``Input(shape=(784,))`` for features,
    ``Input(shape=(28, 28))`` or ``(28, 28, 1)`` for images. It holds no weights.

    >>> lm.layers.Input(shape=(784,))
    Input(shape=(784,))
    >>> model = lm.Sequential([lm.layers.Input(shape=(784,)), lm.layers.Dense(10, activation="softmax")])
    >>> model.layers, model.layers[0].kernel.shape  # it sizes the next layer, then drops out
    ([Dense(10, activation='softmax')], (784, 10))
    """

    def __init__(self, shape: Sequence[int], name: Optional[str] = None) -> None:
        super().__init__(name=name, input_shape=shape)

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "shape": list(self.input_dims or ())}

    def __repr__(self) -> str:
        return f"Input(shape={self.input_dims!r})"


class Dense(Layer):
    """A fully connected layer: ``y = activation(x @ kernel + bias)``.

    ``kernel`` has shape ``(inputs, units)`` (Keras's layout); ``bias`` has shape ``(units,)``.

    >>> import lamina as lm
    >>> lm.layers.Dense(512, activation="relu", input_shape=(784,))
    Dense(512, activation='relu')
    """

    def __init__(self, units: int, activation: Optional[str] = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, input_shape: Any = None, name: Optional[str] = None,
                 input_dim: Optional[int] = None) -> None:
        self.units = positive_int(units, "units")
        self.activation = activations.get(activation)
        if not isinstance(use_bias, (bool, np.bool_)):
            raise TypeError(f"use_bias must be True or False, received use_bias={describe(use_bias)}")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer, "kernel_initializer")
        self.bias_initializer = initializers.get(bias_initializer, "bias_initializer")
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        super().__init__(name=name, input_shape=input_shape)

    _fixed_after_build = ("input_size", "units", "activation", "use_bias", "kernel_initializer",
                          "bias_initializer", "kernel_regularizer")

    def _core_spec(self, input_dims: Tuple[int, ...]) -> _core.LayerSpec:
        reg = self.kernel_regularizer
        return _core.LayerSpec.dense(
            units=self.units, activation=_core.Activation[self.activation], use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer._core_initializer(),
            bias_initializer=self.bias_initializer._core_initializer(),
            l1=reg.l1 if reg else 0.0, l2=reg.l2 if reg else 0.0)

    def output_dims(self, input_dims: Tuple[int, ...]) -> Tuple[int, ...]:
        if len(input_dims) != 1:
            raise ValueError(f"Dense layer {self.name!r} takes flat samples (features,), received input shape "
                             f"{input_dims!r}: put Flatten() before it")
        return (self.units,)

    def weight_shapes(self, input_size: int) -> List[Tuple[int, ...]]:
        return [(input_size, self.units)] + ([(self.units,)] if self.use_bias else [])

    def _view(self, key: str, shape: Tuple[int, ...]) -> np.ndarray:
        if self._params is None or self._offsets is None:
            raise ValueError(f"layer {self.name!r} has no weights yet: build the model first "
                             f"(give input_shape, call model.build(), fit or predict)")
        start = self._offsets[key]
        return self._params[start:start + int(np.prod(shape))].reshape(shape)

    @property
    def kernel(self) -> np.ndarray:
        """The ``(inputs, units)`` kernel: a writable view into the model's parameters."""
        self._build_owner()
        inputs = self._offsets["inputs"] if self._offsets else 0
        return self._view("kernel", (inputs, self.units))

    @property
    def bias(self) -> Optional[np.ndarray]:
        """The ``(units,)`` bias view, or None when ``use_bias=False``."""
        self._build_owner()
        return self._view("bias", (self.units,)) if self.use_bias else None

    @property
    def weights(self) -> List[np.ndarray]:
        self._build_owner()
        if not self.built:
            return []
        return [self.kernel] + ([self.bias] if self.use_bias else [])  # type: ignore[list-item]

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(units=self.units, activation=self.activation, use_bias=self.use_bias,
                      kernel_initializer=self.kernel_initializer.get_config(),
                      bias_initializer=self.bias_initializer.get_config(),
                      kernel_regularizer=(self.kernel_regularizer.get_config()
                                          if self.kernel_regularizer else None))
        return config

    def __repr__(self) -> str:
        return f"Dense({self.units}, activation={self.activation!r})"


class Dropout(Layer):
    """Inverted dropout: during ``fit`` each input is zeroed with probability ``rate`` and the
    survivors are scaled by ``1 / (1 - rate)``; in ``predict``, ``evaluate`` and
    ``gradient_check`` it passes inputs through unchanged. Masks come from the model's seeded
    counter-based generator, so they are the same whatever the thread count.

    >>> Dropout(0.5)
    Dropout(rate=0.5)
    """

    def __init__(self, rate: float, name: Optional[str] = None, input_shape: Any = None) -> None:
        self.rate = finite_float(rate, "rate", low=0.0, high=1.0, high_open=True)
        super().__init__(name=name, input_shape=input_shape)

    _fixed_after_build = ("input_size", "rate")

    def _core_spec(self, input_dims: Tuple[int, ...]) -> _core.LayerSpec:
        return _core.LayerSpec.dropout(rate=self.rate)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["rate"] = self.rate
        return config

    def __repr__(self) -> str:
        return f"Dropout(rate={self.rate})"


class Activation(Layer):
    """Applies an activation function on its own (Keras's ``Activation``), for instance after
    a normalization layer: ``Activation("relu")``. The names are those of ``lm.activations``.

    >>> Activation("relu")
    Activation('relu')
    """

    def __init__(self, activation: Optional[str], name: Optional[str] = None, input_shape: Any = None) -> None:
        self.activation = activations.get(activation)
        super().__init__(name=name, input_shape=input_shape)

    _fixed_after_build = ("input_size", "input_dims", "activation")

    def _core_spec(self, input_dims: Tuple[int, ...]) -> _core.LayerSpec:
        if self.activation == "softmax" and len(input_dims) != 1:
            raise ValueError(f"Activation('softmax') layer {self.name!r} takes flat samples (features,), received "
                             f"input shape {input_dims!r}: put Flatten() before it")
        return _core.LayerSpec.activation_layer(activation=_core.Activation[self.activation])

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["activation"] = self.activation
        return config

    def __repr__(self) -> str:
        return f"Activation({self.activation!r})"


class Flatten(Layer):
    """Makes each sample flat: ``(28, 28)`` becomes ``(784,)``, row-major, as in Keras. The core
    already holds samples flat, so this costs nothing.

    >>> model = lm.Sequential([lm.layers.Input(shape=(28, 28)), Flatten(), lm.layers.Dense(10)])
    >>> model.layers[1].kernel.shape
    (784, 10)
    """

    def output_dims(self, input_dims: Tuple[int, ...]) -> Tuple[int, ...]:
        return (math.prod(input_dims),)

    def __repr__(self) -> str:
        return "Flatten()"


class Reshape(Layer):
    """Gives each sample the shape ``target_shape`` (one entry may be -1, inferred), row-major,
    as in Keras: ``Reshape((28, 28))`` after a 784-wide layer. Like ``Flatten`` it moves no data.

    >>> Reshape((28, 28)).output_dims((784,))
    (28, 28)
    """

    def __init__(self, target_shape: Sequence[int], name: Optional[str] = None, input_shape: Any = None) -> None:
        if not isinstance(target_shape, (tuple, list)) or not target_shape:
            raise ValueError(f"target_shape must be a non-empty tuple of positive ints (one may be -1), "
                             f"received target_shape={describe(target_shape)}")
        dims = tuple(target_shape)
        if sum(1 for d in dims if isinstance(d, int) and not isinstance(d, bool) and d == -1) > 1:
            raise ValueError(f"target_shape may hold at most one -1, received target_shape={dims!r}")
        known = [d for d in dims if not (isinstance(d, int) and d == -1)]
        for d in known:
            positive_int(d, "target_shape entries")
        self.target_shape = tuple(int(d) for d in dims)
        super().__init__(name=name, input_shape=input_shape)

    _fixed_after_build = ("input_size", "input_dims", "target_shape")

    def output_dims(self, input_dims: Tuple[int, ...]) -> Tuple[int, ...]:
        size = math.prod(input_dims)
        known = math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if size % known:
                raise ValueError(f"target_shape={self.target_shape!r} of layer {self.name!r} cannot hold inputs of "
                                 f"shape {input_dims!r} ({size} values)")
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        if known != size:
            raise ValueError(f"target_shape={self.target_shape!r} of layer {self.name!r} holds {known} values, its "
                             f"inputs of shape {input_dims!r} hold {size}")
        return self.target_shape

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["target_shape"] = list(self.target_shape)
        return config

    def __repr__(self) -> str:
        return f"Reshape({self.target_shape!r})"


def deserialize(class_name: str, config: Dict[str, Any]) -> Layer:
    """A layer from ``{"class_name": ..., "config": ...}`` as written by ``get_config``.

    >>> dense = lm.layers.Dense(4, activation="relu", name="hidden", input_shape=(3,))
    >>> copy = deserialize("Dense", dense.get_config())
    >>> copy, copy.name, copy.input_size
    (Dense(4, activation='relu'), 'hidden', 3)
    """
    from lamina import augmentation, normalization

    classes: Dict[str, Any] = {"Dense": Dense, "Dropout": Dropout, "Input": Input, "Activation": Activation,
                               "Flatten": Flatten, "Reshape": Reshape}
    classes.update({cls.__name__: cls for cls in augmentation.LAYERS + normalization.LAYERS})
    if class_name not in classes:
        raise ValueError(f"unknown layer class, received class_name={describe(class_name)}")
    config = dict(config)
    if class_name == "Dense":
        for key in ("kernel_initializer", "bias_initializer"):
            if isinstance(config.get(key), dict):
                config[key] = initializers.get(config[key], key)
        if isinstance(config.get("kernel_regularizer"), dict):
            config["kernel_regularizer"] = regularizers.L1L2(**config["kernel_regularizer"])
    if "input_shape" in config and config["input_shape"] is not None:
        config["input_shape"] = tuple(config["input_shape"])
    if class_name == "Input":
        config["shape"] = tuple(config["shape"])
    if class_name == "Reshape" and isinstance(config.get("target_shape"), list):
        config["target_shape"] = tuple(config["target_shape"])
    for key in ("factor", "height_factor", "width_factor"):  # JSON turns (lower, upper) into a list
        if isinstance(config.get(key), list):
            config[key] = tuple(config[key])
    return classes[class_name](**config)


# They subclass Layer, defined above; lamina/__init__ imports this module first.
from lamina.augmentation import GaussianNoise, RandomFlip, RandomRotation, RandomTranslation, RandomZoom  # noqa: E402
from lamina.normalization import BatchNormalization, LayerNormalization, Normalization  # noqa: E402

__all__ = ["Layer", "ReadOnlyAfterBuildError", "Input", "Dense", "Dropout", "Activation", "Flatten", "Reshape", "RandomFlip",
           "RandomTranslation", "RandomRotation", "RandomZoom", "GaussianNoise", "BatchNormalization",
           "LayerNormalization", "Normalization", "deserialize"]
