"""Data augmentation layers, with Keras's names, arguments and defaults.

They act only while ``fit`` trains (and in ``model(x, training=True)``); ``predict``,
``evaluate``, ``gradient_check`` and exported models see the identity. The C++ core applies them
batch by batch inside the training loop, on the gathered batch, so the data set is never copied
and no Python runs per batch. Each image's transform is drawn from the model's seed, the layer's
position and the training step, so runs repeat exactly whatever the thread count, and a model
resumed from a file draws what an uninterrupted one would.

Images are samples of shape ``(height, width)`` or ``(height, width, channels)`` (channels last),
declared with ``Input(shape=...)`` or ``input_shape=`` on the first layer. Geometric transforms
sample the input bilinearly (or at the nearest pixel) at the point each output pixel maps to;
points outside the image follow ``fill_mode``: ``"reflect"`` (d c b a | a b c d | d c b a),
``"wrap"`` (a b c d | a b c d), ``"constant"`` (``fill_value``) or ``"nearest"`` (the edge pixel).

>>> model = lm.Sequential([lm.layers.Input(shape=(28, 28)),
...                        RandomFlip("horizontal"), RandomTranslation(0.1, 0.1),
...                        lm.layers.Flatten(), lm.layers.Dense(10, activation="softmax")], seed=0)
>>> model.layers[:2]
[RandomFlip(mode='horizontal'), RandomTranslation(height_factor=0.1, width_factor=0.1, fill_mode='reflect')]
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Union

from lamina import _core
from lamina._validation import describe, finite_float
from lamina.layers import Layer

Factor = Union[float, Tuple[float, float]]

FILL_MODES = tuple(_core.FillMode.__members__)
INTERPOLATIONS = tuple(_core.Interpolation.__members__)
FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


def _factor(value: Any, name: str, bound: Optional[float] = None) -> Tuple[float, float]:
    """Keras's factor: one number f means the range (-f, f); a pair is (lower, upper)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be a number or a pair (lower, upper), received {name}={describe(value)}")
        lower, upper = (finite_float(v, name) for v in value)
    else:
        f = finite_float(value, name)
        if f < 0:
            raise ValueError(f"{name} given as one number means the range (-{name}, {name}) and must not be "
                             f"negative, received {name}={describe(value)}")
        lower, upper = -f, f
    if lower > upper:
        raise ValueError(f"{name} must be (lower, upper) with lower <= upper, received {name}={describe(value)}")
    if bound is not None and (abs(lower) > bound or abs(upper) > bound):
        raise ValueError(f"{name} must lie in [-{bound:g}, {bound:g}], received {name}={describe(value)}")
    return lower, upper


def _as_config(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _as_given(value: Any) -> Any:
    """A factor as the user gave it (a pair always as a tuple), for get_config and repr."""
    return tuple(value) if isinstance(value, (tuple, list)) else value


def _choice(value: Any, name: str, allowed: Tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, received {name}={describe(value)}")
    return value


class _ImageAugmentation(Layer):
    """The shared part: image-shaped inputs, the fill arguments and the core spec."""

    _kind: Any = None

    def __init__(self, fill_mode: str = "reflect", interpolation: str = "bilinear", fill_value: float = 0.0,
                 name: Optional[str] = None, input_shape: Any = None) -> None:
        self.fill_mode = _choice(fill_mode, "fill_mode", FILL_MODES)
        self.interpolation = _choice(interpolation, "interpolation", INTERPOLATIONS)
        self.fill_value = finite_float(fill_value, "fill_value")
        super().__init__(name=name, input_shape=input_shape)

    _fixed_after_build: Tuple[str, ...] = ("input_size", "input_dims", "fill_mode", "interpolation", "fill_value")

    def output_dims(self, input_dims: Tuple[int, ...]) -> Tuple[int, ...]:
        if len(input_dims) not in (2, 3):
            raise ValueError(f"{type(self).__name__} layer {self.name!r} takes images of shape (height, width) or "
                             f"(height, width, channels), received input shape {input_dims!r}")
        return input_dims

    def _ranges(self) -> Dict[str, Any]:
        """This layer's AugmentSpec fields beyond the image shape and the fill arguments."""
        return {}

    def _core_spec(self, input_dims: Tuple[int, ...]) -> _core.LayerSpec:
        self.output_dims(input_dims)
        fields: Dict[str, Any] = dict(flip_horizontal=False, flip_vertical=False, height_lower=0.0, height_upper=0.0,
                                      width_lower=0.0, width_upper=0.0, zoom_keep_aspect=True)
        fields.update(self._ranges())
        spec = _core.AugmentSpec(height=input_dims[0], width=input_dims[1],
                                 channels=input_dims[2] if len(input_dims) == 3 else 1,
                                 fill_mode=_core.FillMode[self.fill_mode],
                                 interpolation=_core.Interpolation[self.interpolation],
                                 fill_value=self.fill_value, **fields)
        return _core.LayerSpec.augmentation(kind=self._kind, augment=spec)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(fill_mode=self.fill_mode, interpolation=self.interpolation, fill_value=self.fill_value)
        return config


class RandomFlip(_ImageAugmentation):
    """Flips each training image left-right (``"horizontal"``), upside down (``"vertical"``) or
    each independently (``"horizontal_and_vertical"``, Keras's default), each with probability 1/2.

    >>> RandomFlip()
    RandomFlip(mode='horizontal_and_vertical')
    """

    _kind = _core.LayerKind.random_flip

    def __init__(self, mode: str = "horizontal_and_vertical", name: Optional[str] = None,
                 input_shape: Any = None) -> None:
        self.mode = _choice(mode, "mode", FLIP_MODES)
        super().__init__(name=name, input_shape=input_shape)

    _fixed_after_build = _ImageAugmentation._fixed_after_build + ("mode",)

    def _ranges(self) -> Dict[str, Any]:
        return {"flip_horizontal": "horizontal" in self.mode, "flip_vertical": "vertical" in self.mode}

    def get_config(self) -> Dict[str, Any]:
        config = Layer.get_config(self)  # no fill arguments: a flip moves whole pixels
        config["mode"] = self.mode
        return config

    def __repr__(self) -> str:
        return f"RandomFlip(mode={self.mode!r})"


class _HeightWidthFactors(_ImageAugmentation):
    """The config and repr of the layers with a height_factor and a width_factor."""

    height_factor: Any
    width_factor: Any

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(height_factor=_as_config(self.height_factor), width_factor=_as_config(self.width_factor))
        return config

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(height_factor={self.height_factor!r}, width_factor={self.width_factor!r}, "
                f"fill_mode={self.fill_mode!r})")


class RandomTranslation(_HeightWidthFactors):
    """Shifts each training image by a random fraction of its height and width.

    ``height_factor=0.1`` shifts by up to 10% of the height either way (uniformly in
    ``[-0.1 h, 0.1 h]``; a positive shift moves the content down); a pair ``(lower, upper)``
    gives the range itself. ``width_factor`` likewise (positive: right). Both lie in [-1, 1].

    >>> RandomTranslation(0.1, (-0.2, 0.3), fill_mode="constant")
    RandomTranslation(height_factor=0.1, width_factor=(-0.2, 0.3), fill_mode='constant')
    """

    _kind = _core.LayerKind.random_translation

    def __init__(self, height_factor: Factor, width_factor: Factor, fill_mode: str = "reflect",
                 interpolation: str = "bilinear", fill_value: float = 0.0, name: Optional[str] = None,
                 input_shape: Any = None) -> None:
        self._height = _factor(height_factor, "height_factor", bound=1.0)
        self._width = _factor(width_factor, "width_factor", bound=1.0)
        self.height_factor, self.width_factor = _as_given(height_factor), _as_given(width_factor)
        super().__init__(fill_mode, interpolation, fill_value, name=name, input_shape=input_shape)

    _fixed_after_build = _ImageAugmentation._fixed_after_build + ("height_factor", "width_factor")

    def _ranges(self) -> Dict[str, Any]:
        return {"height_lower": self._height[0], "height_upper": self._height[1],
                "width_lower": self._width[0], "width_upper": self._width[1]}


class RandomRotation(_ImageAugmentation):
    """Rotates each training image about its centre by a random angle.

    ``factor`` is a fraction of a full turn (2 pi): ``factor=0.1`` rotates uniformly within
    +-36 degrees; a pair ``(lower, upper)`` gives the range. Positive angles turn
    counter-clockwise (Keras's convention).

    >>> RandomRotation(0.1)
    RandomRotation(factor=0.1, fill_mode='reflect')
    """

    _kind = _core.LayerKind.random_rotation

    def __init__(self, factor: Factor, fill_mode: str = "reflect", interpolation: str = "bilinear",
                 fill_value: float = 0.0, name: Optional[str] = None, input_shape: Any = None) -> None:
        self._range = _factor(factor, "factor")
        self.factor = _as_given(factor)
        super().__init__(fill_mode, interpolation, fill_value, name=name, input_shape=input_shape)

    _fixed_after_build = _ImageAugmentation._fixed_after_build + ("factor",)

    def _ranges(self) -> Dict[str, Any]:
        return {"height_lower": self._range[0], "height_upper": self._range[1]}

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["factor"] = _as_config(self.factor)
        return config

    def __repr__(self) -> str:
        return f"RandomRotation(factor={self.factor!r}, fill_mode={self.fill_mode!r})"


class RandomZoom(_HeightWidthFactors):
    """Zooms each training image about its centre by a random amount.

    The zoom along the height is ``1 + u`` with ``u`` uniform in ``(-height_factor,
    height_factor)`` (or in the pair ``(lower, upper)``); a positive ``u`` zooms out (the content
    shrinks), a negative one zooms in. ``width_factor=None`` (the default) zooms the width by the
    same amount, keeping the aspect ratio. Factors lie in [-1, 1].

    >>> RandomZoom(0.2)
    RandomZoom(height_factor=0.2, width_factor=None, fill_mode='reflect')
    """

    _kind = _core.LayerKind.random_zoom

    def __init__(self, height_factor: Factor, width_factor: Optional[Factor] = None, fill_mode: str = "reflect",
                 interpolation: str = "bilinear", fill_value: float = 0.0, name: Optional[str] = None,
                 input_shape: Any = None) -> None:
        self._height = _factor(height_factor, "height_factor", bound=1.0)
        self._width = None if width_factor is None else _factor(width_factor, "width_factor", bound=1.0)
        self.height_factor, self.width_factor = _as_given(height_factor), _as_given(width_factor)
        super().__init__(fill_mode, interpolation, fill_value, name=name, input_shape=input_shape)

    _fixed_after_build = _ImageAugmentation._fixed_after_build + ("height_factor", "width_factor")

    def _ranges(self) -> Dict[str, Any]:
        width = self._width or (0.0, 0.0)
        return {"height_lower": self._height[0], "height_upper": self._height[1], "width_lower": width[0],
                "width_upper": width[1], "zoom_keep_aspect": self._width is None}


class GaussianNoise(Layer):
    """Adds zero-mean Gaussian noise of standard deviation ``stddev`` to every input value while
    training (a regularizer for tabular inputs too); the identity at inference.

    >>> GaussianNoise(0.1)
    GaussianNoise(stddev=0.1)
    """

    def __init__(self, stddev: float, name: Optional[str] = None, input_shape: Any = None) -> None:
        self.stddev = finite_float(stddev, "stddev", low=0.0)
        super().__init__(name=name, input_shape=input_shape)

    _fixed_after_build = ("input_size", "input_dims", "stddev")

    def _core_spec(self, input_dims: Tuple[int, ...]) -> _core.LayerSpec:
        return _core.LayerSpec.gaussian_noise(stddev=self.stddev)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["stddev"] = self.stddev
        return config

    def __repr__(self) -> str:
        return f"GaussianNoise(stddev={self.stddev})"


LAYERS = (RandomFlip, RandomTranslation, RandomRotation, RandomZoom, GaussianNoise)
