"""Dtype policies (Keras's names): the dtype a model keeps its weights in, and the one its Dense
products compute in.

=================  =================  ==================================================
policy             ``model.dtype``    Dense products (forward ``x @ W``, ``dW``, ``dx``)
=================  =================  ==================================================
``"float32"``      float32            float32
``"float64"``      float64            float64
``"mixed_bfloat16"``  float32         bfloat16 operands, float32 accumulation
=================  =================  ==================================================

Under ``"mixed_bfloat16"`` the weights (the float32 masters), biases, optimizer state, losses,
softmax, the normalization, augmentation and dropout layers all stay float32: only the operands
of the matrix products are rounded to bfloat16 (round-to-nearest-even), the weights as their
panel is packed and the activations (or gradients) as theirs is, and the products add up in
float32. Inputs, targets, predictions and saved files are float32, as ``model.dtype`` says;
``model.dtype_policy`` and ``model.compute_dtype`` tell the policy apart.

>>> import lamina as lm
>>> policy = lm.dtype_policies.get("mixed_bfloat16")
>>> policy, policy.variable_dtype, policy.compute_dtype
(<DTypePolicy "mixed_bfloat16">, 'float32', 'bfloat16')
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

from lamina import _validation as check

# name -> (variable dtype, compute dtype)
_POLICIES = {"float32": ("float32", "float32"), "float64": ("float64", "float64"),
             "mixed_bfloat16": ("float32", "bfloat16")}


class DTypePolicy:
    """One of the policies above (``lm.dtype_policies.get(name)`` makes one).

    >>> policy = lm.dtype_policies.DTypePolicy("mixed_bfloat16")
    >>> policy.name, policy == lm.Sequential(dtype="mixed_bfloat16").dtype_policy
    ('mixed_bfloat16', True)
    """

    __slots__ = ("_name",)

    def __init__(self, name: str = "float32") -> None:
        self._name = get(name).name

    @classmethod
    def _known(cls, name: str) -> "DTypePolicy":
        policy = object.__new__(cls)
        policy._name = name
        return policy

    @property
    def name(self) -> str:
        return self._name

    @property
    def variable_dtype(self) -> str:
        """What weights, inputs, targets and predictions are held in."""
        return _POLICIES[self._name][0]

    @property
    def compute_dtype(self) -> str:
        """What the Dense products' operands are rounded to."""
        return _POLICIES[self._name][1]

    @property
    def bf16_products(self) -> bool:
        return self.compute_dtype == "bfloat16"

    def get_config(self) -> Dict[str, str]:
        return {"name": self._name}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DTypePolicy) and other._name == self._name

    def __hash__(self) -> int:
        return hash(self._name)

    def __repr__(self) -> str:
        return f'<DTypePolicy "{self._name}">'


def get(value: Any) -> DTypePolicy:
    """The policy for a name ("float32", "float64", "mixed_bfloat16"), a numpy float dtype, or a
    ``DTypePolicy``; anything else is a ValueError naming what was received.

    >>> lm.dtype_policies.get(np.float64).compute_dtype
    'float64'
    """
    if isinstance(value, DTypePolicy):
        return value
    name = value if isinstance(value, str) and value in _POLICIES else None
    if name is None:
        try:
            name = np.dtype(value).name
        except TypeError:
            name = value if isinstance(value, str) else None
    if name in _POLICIES:
        return DTypePolicy._known(name)
    hint = ""
    if name in ("bfloat16", "mixed_float16", "float16"):
        hint = ("; lamina keeps float32 weights and computes products in bfloat16 under "
                "dtype='mixed_bfloat16' (float16 is not supported)")
    raise ValueError(f"dtype must be 'float32', 'float64' or 'mixed_bfloat16', received "
                     f"dtype={check.describe(value)}{hint}")
