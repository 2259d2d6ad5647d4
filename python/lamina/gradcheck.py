"""Gradient checking with two-sided differences, as the course teaches it.

All parameters are concatenated into one vector theta. For each component,
``approx_k = (J(theta + eps e_k) - J(theta - eps e_k)) / (2 eps)`` is compared with
backprop's ``d theta_k`` by

    difference = ||approx - grad||_2 / (||approx||_2 + ||grad||_2)

and the check passes when ``difference < threshold`` (default 1e-7: a correct float64 backprop
lands around 1e-9 to 1e-11; a bug lands far above 1e-5). J is the compiled loss plus any
regularization penalty, evaluated with dropout off, on a float64 copy of the model whatever its
dtype. Both J and the differences are computed by the C++ core. A ``"mixed_bfloat16"`` model is
checked the same way, with float64 products: rounding operands to bfloat16 has no derivative,
so the check covers its layers' backward passes, not the bfloat16 rounding.

``training=True`` checks the network as ``fit`` trains it instead: dropout masks, noise and
augmentations are drawn once, at the model's current step, and held fixed for every evaluation
of J, so the check covers their backward passes too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple

import numpy as np

from lamina import _validation as check
from lamina import _weights
from lamina import layers as layers_module


@dataclass
class ParameterGap:
    """One parameter's analytic and numerical derivative.

    >>> ParameterGap("dense/bias[0]", analytic=0.5, numerical=0.25).gap
    0.25
    """

    name: str
    analytic: float
    numerical: float

    @property
    def gap(self) -> float:
        return abs(self.analytic - self.numerical)


@dataclass
class GradientCheckReport:
    """The outcome of ``gradient_check``: it passes when ``difference < threshold``.

    >>> report = GradientCheckReport(difference=3e-10, threshold=1e-7, epsilon=1e-7, checked=13, total=13)
    >>> report.passed
    True
    >>> report
    GradientCheckReport(passed: difference=3.000e-10 < threshold=1e-07, 13 of 13 parameters, epsilon=1e-07)
    """

    difference: float
    threshold: float
    epsilon: float
    checked: int
    total: int
    worst: List[ParameterGap] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.difference < self.threshold)

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        lines = [f"GradientCheckReport({verdict}: difference={self.difference:.3e} "
                 f"{'<' if self.passed else '>='} threshold={self.threshold:.0e}, "
                 f"{self.checked} of {self.total} parameters, epsilon={self.epsilon:.0e})"]
        lines += [f"  {g.name}: analytic={g.analytic:.6e} numerical={g.numerical:.6e} gap={g.gap:.2e}"
                  for g in self.worst]
        return "\n".join(lines)


def _parameter_name(tensors: List[Tuple[str, str, int, Tuple[int, ...]]], index: int) -> str:
    """A readable name for one entry of the flat parameter vector, e.g. 'dense_1/kernel[3, 7]'."""
    for layer, label, offset, shape in tensors:
        size = int(np.prod(shape))
        if offset <= index < offset + size:
            position = np.unravel_index(index - offset, shape)
            return f"{layer}/{label}[{', '.join(str(int(i)) for i in position)}]"
    raise IndexError(index)


def _apply_simulated_bug(model: Any, grad: np.ndarray, bug: Tuple[str, float]) -> None:
    if not (isinstance(bug, tuple) and len(bug) == 2):
        raise ValueError(f"simulate_bug must be (layer_name, factor), received simulate_bug={check.describe(bug)}")
    name, factor = bug
    factor = check.finite_float(factor, "simulate_bug factor")
    for layer, label, offset, shape in model.differentiable_tensors():
        if layer == name and label == "kernel":
            grad[offset:offset + int(np.prod(shape))] *= factor
            return
    dense = [l.name for l in model.layers if isinstance(l, layers_module.Dense)]
    raise ValueError(f"simulate_bug names no Dense layer, received {name!r}; the model has {dense}")


def gradient_check(model: Any, x: Any, y: Any, epsilon: float = 1e-7, threshold: float = 1e-7,
                   max_params: Optional[int] = None, seed: int = 0, worst: int = 5,
                   simulate_bug: Optional[Tuple[str, float]] = None, sample_weight: Any = None,
                   training: bool = False) -> GradientCheckReport:
    """Compares backprop's gradient with two-sided differences on ``x``, ``y``.

    ``max_params`` checks a random subset of that many parameters (all by default: each costs
    two forward passes over ``x``, so keep ``x`` small). ``worst`` parameters with the largest
    gaps are listed in the report, by name.

    ``simulate_bug=(layer_name, factor)`` scales that layer's backprop kernel gradient by
    ``factor`` before the comparison: the kind of mistake a hand-written backward pass makes
    (a dropped term, a wrong constant), to see what a failing check looks like.
    ``sample_weight`` checks the weighted loss ``fit`` would train on (see ``Sequential.fit``).

    >>> import numpy as np, lamina as lm
    >>> model = lm.Sequential([lm.layers.Dense(3, activation="tanh", input_shape=(2,)),
    ...                        lm.layers.Dense(1)], seed=0)
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> x = np.array([[0.5, -1.0], [1.5, 0.3]]); y = np.array([[1.0], [0.0]])
    >>> lm.gradient_check(model, x, y).passed
    True
    """
    check.require_compiled(model, "gradient_check")
    check.require_built(model, "gradient_check")
    epsilon = check.finite_float(epsilon, "epsilon", low=0.0, low_open=True)
    threshold = check.finite_float(threshold, "threshold", low=0.0, low_open=True)
    worst = check.non_negative_int(worst, "worst")
    seed = check.non_negative_int(seed, "seed")
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be True or False, received training={check.describe(training)}")
    training = bool(training)
    xs = check.features(x, "x", np.float64, model.input_dims)
    ys = model.loss.targets(y, xs.shape[0], model.output_size, np.float64)  # the model's checks, in float64
    weighted = {} if sample_weight is None else {
        "sample_weight": _weights.sample_weights(sample_weight, xs.shape[0], np.float64)}

    net = model.float64_network()
    tensors = model.differentiable_tensors()
    candidates = np.concatenate([np.arange(offset, offset + int(np.prod(shape)), dtype=np.int64)
                                 for _, _, offset, shape in tensors] or [np.zeros(0, dtype=np.int64)])
    total = int(candidates.size)
    if max_params is None or check.positive_int(max_params, "max_params") >= total:
        indices = np.sort(candidates)
    else:
        indices = np.sort(np.random.default_rng(seed).choice(candidates, size=max_params, replace=False))
    net.loss_and_gradient(xs, ys, training=training, **weighted)
    full_grad = net.gradients().copy()
    if simulate_bug is not None:
        _apply_simulated_bug(model, full_grad, simulate_bug)
    grad = full_grad[indices]
    approx = net.numerical_gradient(xs, ys, epsilon, indices, training=training, **weighted)

    # The ratio is scale-free: divide by the largest magnitude first so huge losses don't overflow.
    if not (np.isfinite(approx).all() and np.isfinite(grad).all()):
        difference = float("inf")  # the loss overflowed near theta: nothing can be compared
    else:
        scale = max(float(np.max(np.abs(approx), initial=0.0)), float(np.max(np.abs(grad), initial=0.0)))
        a, b = (approx / scale, grad / scale) if scale > 0 else (approx, grad)
        denominator = np.linalg.norm(a) + np.linalg.norm(b)
        difference = float(np.linalg.norm(a - b) / denominator) if denominator > 0 else 0.0
    order = np.argsort(-np.abs(approx - grad))[:worst]
    gaps = [ParameterGap(_parameter_name(tensors, int(indices[i])), float(grad[i]), float(approx[i])) for i in order]
    return GradientCheckReport(difference, threshold, epsilon, int(indices.size), int(total), gaps)
