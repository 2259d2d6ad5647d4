"""Activation functions, looked up by name as in Keras (``activation="relu"``).

The math lives in the C++ core (``cpp/lamina/activations.cpp``); this module names and checks.

==============  ======================================================
name            f(x)
==============  ======================================================
``linear``      x (also ``None``)
``relu``        max(x, 0)
``leaky_relu``  x if x > 0 else 0.2 x
``elu``         x if x > 0 else e^x - 1
``sigmoid``     1 / (1 + e^-x)
``tanh``        tanh(x)
``softmax``     e^x_i / sum_j e^x_j along each sample
``softplus``    log(1 + e^x)
``gelu``        x * Phi(x) (exact, erf form)
==============  ======================================================
"""

from __future__ import annotations

from typing import Optional

from lamina import _core
from lamina._validation import describe

NAMES = tuple(_core.Activation.__members__)  # the core's activations, in its order


def get(identifier: Optional[str]) -> str:
    """The canonical activation name for ``identifier`` (``None`` means ``"linear"``).

    >>> get("relu")
    'relu'
    """
    if identifier is None:
        return "linear"
    if isinstance(identifier, str) and identifier.lower() in NAMES:
        return identifier.lower()
    raise ValueError(f"unknown activation, received activation={describe(identifier)}; "
                     f"expected one of {', '.join(NAMES)}")
