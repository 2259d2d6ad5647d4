"""Kernel regularizers: penalties added to the loss (and their gradients to backprop).

Keras's definitions: ``L2(l2)`` adds ``l2 * sum(W ** 2)``, ``L1(l1)`` adds ``l1 * sum(|W|)``,
``L1L2`` adds both. The penalty is part of the reported loss, of the gradient, and of
``gradient_check``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Union

from lamina._validation import describe, finite_float


class Regularizer:
    """A weight penalty ``l1 * sum|W| + l2 * sum W^2``.

    >>> model = lm.Sequential([lm.layers.Dense(1, kernel_initializer="ones", input_shape=(2,),
    ...                                        kernel_regularizer=lm.regularizers.L2(0.5))])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> model.evaluate(np.zeros((1, 2)), np.zeros((1, 1)), verbose=0)  # 0 error + 0.5 * (1 + 1)
    1.0
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = finite_float(l1, "l1", low=0.0)
        self.l2 = finite_float(l2, "l2", low=0.0)

    def get_config(self) -> Dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(l1={self.l1}, l2={self.l2})"


class L1L2(Regularizer):
    """Both penalties: ``l1 * sum|W| + l2 * sum W^2``.

    >>> L1L2(l1=0.01, l2=0.001).get_config()
    {'l1': 0.01, 'l2': 0.001}
    """


class L1(Regularizer):
    """``l1 * sum|W|``.

    >>> lm.layers.Dense(8, kernel_regularizer=L1(0.001)).kernel_regularizer
    L1(l1=0.001)
    """

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1)

    def __repr__(self) -> str:
        return f"L1(l1={self.l1})"


class L2(Regularizer):
    """``l2 * sum W^2`` (weight decay through the loss).

    >>> L2(1e-4)
    L2(l2=0.0001)
    """

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l2=l2)

    def __repr__(self) -> str:
        return f"L2(l2={self.l2})"


def get(identifier: Union[None, str, Regularizer, Dict[str, Any]]) -> Optional[Regularizer]:
    """A regularizer from ``None``, ``"l1"``, ``"l2"``, ``"l1_l2"``, an instance or a config.

    >>> get("l2"), get("l1_l2"), get({"l1": 0.1})
    (L2(l2=0.01), L1L2(l1=0.01, l2=0.01), L1L2(l1=0.1, l2=0.0))
    """
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):
        return L1L2(**identifier)
    if isinstance(identifier, str) and identifier.lower() in ("l1", "l2", "l1_l2", "l1l2"):
        return {"l1": L1, "l2": L2}.get(identifier.lower(), lambda: L1L2(0.01, 0.01))()
    raise ValueError(f"unknown regularizer, received kernel_regularizer={describe(identifier)}; "
                     f"expected L1(...), L2(...), L1L2(...), 'l1', 'l2' or 'l1_l2'")
