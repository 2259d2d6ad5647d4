"""Optimizers, with Keras's defaults and update rules (computed in C++ over the flat parameter
block). ``g`` is a parameter's gradient, ``t`` the step number starting at 1; every rule below
updates each parameter ``w`` elementwise.

Gradient clipping (any optimizer; at most one of them): ``clipvalue`` clips each element to
``[-clipvalue, clipvalue]``; ``clipnorm`` rescales each weight tensor's gradient to at most that
L2 norm; ``global_clipnorm`` rescales all gradients together to at most that norm.
"""

from __future__ import annotations

import weakref
from typing import Any, Dict, Optional, Union

from lamina import _core
from lamina._validation import describe, finite_float

# The hyperparameters an optimizer does not have; its update rule never reads them.
_UNREAD: Dict[str, Any] = {"momentum": 0.0, "nesterov": False, "rho": 0.0, "centered": False, "beta_1": 0.0,
                           "beta_2": 0.0, "amsgrad": False, "epsilon": 0.0, "initial_accumulator_value": 0.0,
                           "weight_decay": 0.0}


class Optimizer:
    """Base class: learning rate, clipping, and the binding to a compiled model's C++ state.

    >>> model = lm.Sequential([lm.layers.Dense(1, input_shape=(2,))], seed=0)
    >>> model.compile(optimizer=lm.optimizers.SGD(learning_rate=0.1, clipnorm=1.0), loss="mse")
    >>> _ = model.fit(np.ones((4, 2)), np.ones((4, 1)), batch_size=2, epochs=1, verbose=0)
    >>> model.optimizer.iterations, model.optimizer.clipnorm  # two steps of two samples
    (2, 1.0)
    """

    name = ""

    def __init__(self, learning_rate: float, clipnorm: Optional[float] = None, clipvalue: Optional[float] = None,
                 global_clipnorm: Optional[float] = None) -> None:
        self._learning_rate = finite_float(learning_rate, "learning_rate", low=0.0, low_open=True)
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        given = [k for k, v in clips.items() if v is not None]
        if len(given) > 1:
            raise ValueError(f"set at most one of clipnorm, clipvalue, global_clipnorm, received {', '.join(given)}")
        for key, value in clips.items():
            if value is not None:
                finite_float(value, key, low=0.0, low_open=True)
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self._net: Any = None  # the compiled model's C++ network, which owns the state
        self._model: Any = None  # weak reference to that model: an optimizer drives one model

    def _hyper(self) -> Dict[str, Any]:
        return {}

    def _core_config(self) -> _core.OptimizerConfig:
        """Every field of the core's config, given here: Python holds the only defaults."""
        config = dict(_UNREAD, **self._hyper(), learning_rate=self._learning_rate)
        for key in ("clipnorm", "clipvalue", "global_clipnorm"):
            config[key] = float(getattr(self, key) or 0.0)  # 0 turns the clip off
        return _core.OptimizerConfig(kind=_core.OptimizerKind[self.name], **config)

    def _check_owner(self, model: Any) -> None:
        """Rejects compiling into a second model: the state, the step count and every later
        change of learning rate belong to one network."""
        owner = self._model() if self._model is not None else None
        if owner is not None and owner is not model:
            raise ValueError(f"this {type(self).__name__} is already compiled into model {owner.name!r}; an optimizer "
                             f"drives one model: pass a new one, e.g. optimizer=lm.optimizers.get("
                             f"model.optimizer.get_config())")

    def _attach(self, net: Any, model: Any) -> None:
        self._check_owner(model)
        net.set_optimizer(self._core_config())
        self._net, self._model = net, weakref.ref(model)

    @property
    def learning_rate(self) -> float:
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._learning_rate = finite_float(value, "learning_rate", low=0.0, low_open=True)
        if self._net is not None:
            self._net.learning_rate = self._learning_rate

    @property
    def iterations(self) -> int:
        """Steps taken (the ``t`` of the update rules)."""
        return int(self._net.iterations) if self._net is not None else 0

    def get_config(self) -> Dict[str, Any]:
        config = dict(self._hyper(), name=self.name, learning_rate=self._learning_rate)
        for key in ("clipnorm", "clipvalue", "global_clipnorm"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        return config

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, received {name}={describe(value)}")
    return value


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    momentum == 0: ``w <- w - lr * g``

    otherwise: ``m <- momentum * m - lr * g``; then ``w <- w + m``, or with ``nesterov=True``
    ``w <- w + momentum * m - lr * g``.

    >>> SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
    SGD(momentum=0.9, nesterov=True, learning_rate=0.1)
    """

    name = "sgd"

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.momentum = finite_float(momentum, "momentum", low=0.0, high=1.0)
        self.nesterov = _flag(nesterov, "nesterov")

    def _hyper(self) -> Dict[str, Any]:
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """RMSprop.

    ``v <- rho * v + (1 - rho) * g^2``; with ``centered=True`` also
    ``a <- rho * a + (1 - rho) * g`` and the denominator uses ``v - a^2`` instead of ``v``;
    ``step = lr * g / sqrt(v + epsilon)``; without momentum ``w <- w - step``, with it
    ``m <- momentum * m + step`` and ``w <- w - m``.

    >>> RMSprop(learning_rate=0.01, centered=True).get_config()
    {'rho': 0.9, 'momentum': 0.0, 'epsilon': 1e-07, 'centered': True, 'name': 'rmsprop', 'learning_rate': 0.01}
    """

    name = "rmsprop"

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho = finite_float(rho, "rho", low=0.0, high=1.0, high_open=True)
        self.momentum = finite_float(momentum, "momentum", low=0.0, high=1.0)
        self.epsilon = finite_float(epsilon, "epsilon", low=0.0, low_open=True)
        self.centered = _flag(centered, "centered")

    def _hyper(self) -> Dict[str, Any]:
        return {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    """Adagrad. ``acc`` starts at ``initial_accumulator_value``;
    ``acc <- acc + g^2``; ``w <- w - lr * g / sqrt(acc + epsilon)``.

    >>> Adagrad(learning_rate=0.05, initial_accumulator_value=0.0)
    Adagrad(initial_accumulator_value=0.0, epsilon=1e-07, learning_rate=0.05)
    """

    name = "adagrad"

    def __init__(self, learning_rate: float = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = finite_float(initial_accumulator_value, "initial_accumulator_value", low=0.0)
        self.epsilon = finite_float(epsilon, "epsilon", low=0.0, low_open=True)

    def _hyper(self) -> Dict[str, Any]:
        return {"initial_accumulator_value": self.initial_accumulator_value, "epsilon": self.epsilon}


class Adam(Optimizer):
    """Adam, with Keras's folding of the bias correction into the step size:

    ``alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)``;
    ``m <- m + (1 - beta_1) (g - m)``; ``v <- v + (1 - beta_2) (g^2 - v)``;
    with ``amsgrad=True`` ``v_hat <- max(v_hat, v)`` replaces ``v`` below;
    ``w <- w - alpha * m / (sqrt(v) + epsilon)``. ``t`` advances once per step.

    >>> model = lm.Sequential([lm.layers.Dense(1, input_shape=(2,))], seed=0)
    >>> model.compile(optimizer=Adam(learning_rate=3e-4), loss="mse")
    >>> model.optimizer.learning_rate = 1e-3  # takes effect from the next step
    >>> model.optimizer
    Adam(beta_1=0.9, beta_2=0.999, epsilon=1e-07, amsgrad=False, learning_rate=0.001)
    """

    name = "adam"

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = finite_float(beta_1, "beta_1", low=0.0, high=1.0, high_open=True)
        self.beta_2 = finite_float(beta_2, "beta_2", low=0.0, high=1.0, high_open=True)
        self.epsilon = finite_float(epsilon, "epsilon", low=0.0, low_open=True)
        self.amsgrad = _flag(amsgrad, "amsgrad")

    def _hyper(self) -> Dict[str, Any]:
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay: first ``w <- w - lr * weight_decay * w`` (every weight,
    biases included, as Keras does by default), then the Adam update above.

    >>> AdamW(learning_rate=1e-3, weight_decay=0.01).get_config()["weight_decay"]
    0.01
    """

    name = "adamw"

    def __init__(self, learning_rate: float = 0.001, weight_decay: float = 0.004, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False, **kwargs: Any) -> None:
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, **kwargs)
        self.weight_decay = finite_float(weight_decay, "weight_decay", low=0.0)

    def _hyper(self) -> Dict[str, Any]:
        return dict(super()._hyper(), weight_decay=self.weight_decay)


_BY_NAME = {cls.name: cls for cls in (SGD, RMSprop, Adagrad, Adam, AdamW)}
NAMES = tuple(_core.OptimizerKind.__members__)  # the core's optimizers; each has a class above


def get(identifier: Union[str, Optimizer, Dict[str, Any]]) -> Optimizer:
    """An optimizer from a name (Keras defaults), an instance or a config dict.

    >>> get("rmsprop")
    RMSprop(rho=0.9, momentum=0.0, epsilon=1e-07, centered=False, learning_rate=0.001)
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict) and identifier.get("name") in _BY_NAME:
        config = dict(identifier)
        return _BY_NAME[config.pop("name")](**config)
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"unknown optimizer, received optimizer={describe(identifier)}; "
                     f"expected one of {', '.join(NAMES)}")
