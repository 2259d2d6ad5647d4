"""Weight initializers (Keras names and formulas; the numbers are drawn in C++).

Variance scaling with ``n`` = fan_in (He, LeCun) or (fan_in + fan_out) / 2 (Glorot/Xavier):
uniform on [-sqrt(3 s / n), sqrt(3 s / n)] or a normal truncated at two standard deviations with
standard deviation sqrt(s / n) / 0.8796; s = 2 for He, 1 otherwise. Biases start at zero.
"""

from __future__ import annotations

from typing import Any, Dict, Union

from lamina._validation import describe, finite_float

NAMES = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
         "lecun_normal", "zeros", "ones")
_ALIASES = {"xavier_uniform": "glorot_uniform", "xavier_normal": "glorot_normal"}


class Initializer:
    """Base class; ``name`` is the C++ core's name for it."""

    name = ""

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _named(name: str) -> type:
    cls = type("".join(p.capitalize() for p in name.split("_")), (Initializer,), {"name": name})
    cls.__doc__ = f"The ``{name}`` initializer."
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
    """Every element equal to ``value``."""

    name = "constant"

    def __init__(self, value: float = 0.0) -> None:
        self.value = finite_float(value, "value")

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "value": self.value}

    def __repr__(self) -> str:
        return f"Constant(value={self.value})"


_BY_NAME = {cls.name: cls for cls in (GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform,
                                      LecunNormal, Zeros, Ones, Constant)}


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
