"""Weight initializers (Keras names and formulas; the numbers are drawn in C++).

Variance scaling with ``n`` = fan_in (He, LeCun) or (fan_in + fan_out) / 2 (Glorot/Xavier):
uniform on [-sqrt(3 s / n), sqrt(3 s / n)] or a normal truncated at two standard deviations with
standard deviation sqrt(s / n) / 0.8796; s = 2 for He, 1 otherwise. Biases start at zero.
``RandomNormal``, ``TruncatedNormal`` and ``RandomUniform`` take fixed scales instead: the
too-large and too-small initializations the course contrasts with Xavier and He.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple, Type, Union

from lamina import _core
from lamina._validation import describe, finite_float

# The core's initializers that a bare name can make (constant needs its value).
NAMES = tuple(name for name in _core.InitKind.__members__ if name != "constant")
_ALIASES = {"xavier_uniform": "glorot_uniform", "xavier_normal": "glorot_normal"}


class Initializer:
    """Base class; ``name`` is the C++ core's name for it. ``get`` makes one from a name or config.

    >>> init = lm.initializers.get("xavier_uniform")  # Xavier is Glorot
    >>> isinstance(init, lm.initializers.Initializer), init.get_config()
    (True, {'name': 'glorot_uniform'})
    """

    name = ""

    def core_values(self) -> Tuple[float, float]:
        """The two numbers the core's initializer takes (mean/stddev, bounds or a constant)."""
        return 0.0, 0.0

    def _core_initializer(self) -> Any:
        """The typed ``_core.Initializer`` the layer spec carries."""
        value, value2 = self.core_values()
        return _core.Initializer(kind=_core.InitKind[self.name], value=value, value2=value2)

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _named(name: str) -> type:
    cls = type("".join(p.capitalize() for p in name.split("_")), (Initializer,), {"name": name})
    cls.__doc__ = (f"The ``{name}`` initializer.\n\n"
                   f"    >>> lm.layers.Dense(4, kernel_initializer=\"{name}\").kernel_initializer\n"
                   f"    {cls.__name__}()\n")
    return cls


GlorotUniform = _named("glorot_uniform")
GlorotNormal = _named("glorot_normal")
HeUniform = _named("he_uniform")
HeNormal = _named("he_normal")
LecunUniform = _named("lecun_uniform")
LecunNormal = _named("lecun_normal")
Zeros = _named("zeros")
Ones = _named("ones")


class Constant(Initializer):
    """Every element equal to ``value``.

    >>> model = lm.Sequential([lm.layers.Dense(2, bias_initializer=Constant(0.5), input_shape=(3,))], seed=0)
    >>> model.layers[0].bias
    array([0.5, 0.5]...)
    """

    name = "constant"

    def __init__(self, value: float = 0.0) -> None:
        self.value = finite_float(value, "value")

    def core_values(self) -> Tuple[float, float]:
        return self.value, 0.0

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "value": self.value}

    def __repr__(self) -> str:
        return f"Constant(value={self.value})"


class RandomNormal(Initializer):
    """Normal with the given mean and standard deviation (Keras default stddev 0.05).

    >>> RandomNormal(stddev=0.01)
    RandomNormal(mean=0.0, stddev=0.01)
    """

    name = "random_normal"

    def __init__(self, mean: float = 0.0, stddev: float = 0.05) -> None:
        self.mean = finite_float(mean, "mean")
        self.stddev = finite_float(stddev, "stddev", low=0.0)

    def core_values(self) -> Tuple[float, float]:
        return self.mean, self.stddev

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "mean": self.mean, "stddev": self.stddev}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean}, stddev={self.stddev})"


class TruncatedNormal(RandomNormal):
    """Normal with the given mean and standard deviation, redrawn beyond two standard deviations.

    >>> model = lm.Sequential([lm.layers.Dense(50, kernel_initializer=TruncatedNormal(stddev=0.1),
    ...                                        input_shape=(40,))], seed=0)
    >>> bool(np.abs(model.layers[0].kernel).max() <= 0.2)
    True
    """

    name = "truncated_normal"


class RandomUniform(Initializer):
    """Uniform on ``[minval, maxval)`` (Keras default +-0.05).

    >>> RandomUniform(minval=-0.1, maxval=0.1).get_config()
    {'name': 'random_uniform', 'minval': -0.1, 'maxval': 0.1}
    """

    name = "random_uniform"

    def __init__(self, minval: float = -0.05, maxval: float = 0.05) -> None:
        self.minval = finite_float(minval, "minval")
        self.maxval = finite_float(maxval, "maxval")
        if self.maxval < self.minval:
            raise ValueError(f"maxval must be >= minval, received minval={minval}, maxval={maxval}")

    def core_values(self) -> Tuple[float, float]:
        return self.minval, self.maxval

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "minval": self.minval, "maxval": self.maxval}

    def __repr__(self) -> str:
        return f"RandomUniform(minval={self.minval}, maxval={self.maxval})"


_ALL: Tuple[Type[Initializer], ...] = (GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform,
                                      LecunNormal, Zeros, Ones, Constant, RandomNormal, TruncatedNormal,
                                      RandomUniform)
_BY_NAME: Dict[str, Type[Initializer]] = {cls.name: cls for cls in _ALL}


def get(identifier: Union[str, Initializer, Dict[str, Any]], argument: str = "initializer") -> Initializer:
    """An initializer from a name, an instance or a config dict.

    >>> get("he_normal")
    HeNormal()
    """
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, dict) and identifier.get("name") in _BY_NAME:
        config = dict(identifier)
        cls = _BY_NAME[config.pop("name")]
        return cls(**config)
    if isinstance(identifier, str):
        key = _ALIASES.get(identifier.lower(), identifier.lower())
        if key in _BY_NAME:
            return _BY_NAME[key]()
    raise ValueError(f"unknown initializer, received {argument}={describe(identifier)}; "
                     f"expected one of {', '.join(NAMES)} or constant")
