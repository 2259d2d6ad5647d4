"""scikit-learn estimators over lamina's core: ``MLPClassifier`` and ``MLPRegressor``.

They take scikit-learn's ``MLPClassifier`` / ``MLPRegressor`` parameters, so they drop into
``Pipeline``, ``GridSearchCV``, ``cross_val_score`` and friends, while every number is computed
by lamina's C++ core (the fitted network is ``est.model_``, a ``lamina.Sequential``).

>>> from sklearn.datasets import load_iris
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> from lamina.sklearn import MLPClassifier
>>> X, y = load_iris(return_X_y=True)
>>> clf = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=1000, random_state=0))
>>> clf.fit(X, y).score(X, y) > 0.95
True
>>> clf[-1].model_.layers
[Dense(16, activation='relu'), Dense(3, activation='softmax')]

scikit-learn is an optional dependency (``pip install lamina[sklearn]``): ``import lamina``
never imports it; ``import lamina.sklearn`` does.

How the parameters map onto lamina
----------------------------------
* ``hidden_layer_sizes``: one ``Dense(units, activation)`` per entry (Glorot-uniform kernels,
  zero biases), each followed by ``Dropout(dropout)`` when ``dropout > 0``. The output layer is
  one sigmoid unit (binary classification, ``binary_crossentropy``), one softmax unit per class
  (``sparse_categorical_crossentropy``) or one linear unit per target (``mean_squared_error``).
* ``activation``: scikit-learn's ``identity``, ``logistic``, ``tanh``, ``relu`` or any lamina
  activation (``leaky_relu``, ``elu``, ``softplus``, ``gelu``, ...).
* ``solver``: any lamina optimizer name, ``sgd``, ``rmsprop``, ``adagrad``, ``adam``,
  ``adamw``, with step size ``learning_rate_init``. ``sgd`` uses ``momentum`` and
  ``nesterovs_momentum``; ``adam`` / ``adamw`` use ``beta_1``, ``beta_2``, ``epsilon``.
  scikit-learn's ``lbfgs`` and its ``learning_rate`` schedules are not offered.
* ``alpha``: scikit-learn's solvers minimise, per minibatch of ``B`` samples,
  ``mean data loss + (alpha / (2 B)) * ||W||^2`` (kernels only). lamina's ``L2(l2)`` adds
  ``l2 * ||W||^2`` to its own mean loss, so each kernel gets ``L2(alpha / (2 B))`` for the
  classifier (lamina's cross-entropies are scikit-learn's log-losses) and
  ``L2(alpha / (n_outputs * B))`` for the regressor (lamina's MSE averages over the outputs;
  scikit-learn's gradient is that of half the squared error summed over them). The objective is
  then proportional to scikit-learn's, with the same optimum and, for the scale-free Adam, the
  same steps: a value of ``alpha`` means the same here as there. (``B`` is the configured batch
  size; a shorter last batch keeps the same ``l2``.)
* ``loss_`` / ``loss_curve_``: the epoch's mean training loss including the penalty, on
  scikit-learn's scale: the log-loss for the classifier, ``0.5 * squared error averaged over
  samples and outputs`` (scikit-learn's ``squared_loss``) for the regressor, so ``tol`` means
  what it means in scikit-learn.
* Stopping is scikit-learn's: training ends when the training loss (or, with
  ``early_stopping=True``, the validation score on a held-out ``validation_fraction``,
  stratified for the classifier) has not improved by more than ``tol`` for more than
  ``n_iter_no_change`` consecutive epochs; with early stopping the best epoch's weights are
  restored. Reaching ``max_iter`` epochs first raises a ``ConvergenceWarning``.
* ``random_state`` seeds lamina's counter-based generator (initial weights, shuffles, dropout
  masks, all independent of the thread count); the early-stopping split uses it too.
* ``dtype``: None (default) trains float32 inputs in float32 and any other input in float64,
  as scikit-learn's own MLPs do; ``"float32"`` (fastest) or ``"float64"`` forces one;
  ``"mixed_bfloat16"`` holds data and weights in float32 with bfloat16 products (see
  ``lm.dtype_policies``).
* ``fit(X, y, sample_weight=)``: scikit-learn's MLPs divide each batch's weighted loss by the
  batch's weight sum (and the penalty by it too). lamina's core divides by the number of
  samples (Keras's rule), so the estimators rescale the weights to mean 1 and give the penalty
  the batch's expected weight sum ``B * mean(sample_weight)``: the same objective as
  scikit-learn's for a batch holding all the data, its expectation for smaller batches. Integer
  weights then act as repeated samples when one batch holds the data. With early stopping the
  weights are split with the data and the validation score is weighted.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import (
        _check_sample_weight,
        check_is_fitted,
        column_or_1d,
        validate_data,
    )
except ImportError as exc:  # not installed, or older than 1.6 (no validate_data / __sklearn_tags__)
    raise ImportError("lamina.sklearn needs scikit-learn 1.6 or newer: pip install 'lamina[sklearn]' "
                      f"(or pip install -U scikit-learn); the import failed with: {exc}") from exc

from lamina import activations as _activations
from lamina import callbacks as _callbacks
from lamina import layers as _layers
from lamina import optimizers as _optimizers
from lamina import regularizers as _regularizers
from lamina import saving as _saving
from lamina.models import Sequential

__all__ = ["MLPClassifier", "MLPRegressor"]

_ACTIVATION_ALIASES = {"identity": "linear", "logistic": "sigmoid"}
# dtype= -> what X and y are held in (the model's variable dtype)
_DTYPES = {"float32": np.float32, "float64": np.float64, "mixed_bfloat16": np.float32}
# Below this many floating-point operations per call into the core (a training step, or a
# prediction), the estimators run the core on one thread: for the small problems scikit-learn
# tools fit again and again, waking OpenMP threads costs more than the work, and on a busy
# machine far more. lamina's results do not depend on the thread count.
_MIN_FLOPS_FOR_THREADS = 1e7


def _threads_for(flops: float) -> Optional[int]:
    """The model's thread count for calls of this size: 1 below the threshold, else the
    process-wide count (None). It is the model's own, so threaded searches do not interfere."""
    return 1 if flops < _MIN_FLOPS_FOR_THREADS else None


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(float(value))


class _StopLikeSklearn(_callbacks.Callback):
    """Per epoch: records ``loss_curve_`` and applies scikit-learn's ``n_iter_no_change`` / ``tol``
    rule to the training loss or to the validation score (keeping the best weights)."""

    def __init__(self, est: "_BaseMLP", validation: Optional[Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]],
                 scale: float) -> None:
        super().__init__()
        self.est, self.validation, self.scale = est, validation, scale
        self.stopped = False

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, float]] = None) -> None:
        est = self.est
        loss = float((logs or {})["loss"])
        outputs = getattr(est, "n_outputs_", 1) if not est._is_classifier else 1
        if outputs > 1:  # scikit-learn averages the squared error over outputs, not the penalty
            penalty = self.model.regularization_loss()
            loss = (loss - penalty) / outputs + penalty
        loss *= self.scale
        est.n_iter_ += 1
        est.loss_ = loss
        est.loss_curve_.append(loss)
        if est.verbose:
            print("Iteration %d, loss = %.8f" % (est.n_iter_, loss))
        if self.validation is not None:
            score = est._score_encoded(self.model, *self.validation)
            est.validation_scores_.append(score)
            if est.verbose:
                print("Validation score: %f" % score)
            if not score >= est.best_validation_score_ + est.tol:  # NaN counts as no improvement
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                est._best_weights = self.model.get_weights()
        else:
            assert est.best_loss_ is not None  # None only with early_stopping
            if not loss <= est.best_loss_ - est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if loss < est.best_loss_:
                est.best_loss_ = loss
        if est._no_improvement_count > est.n_iter_no_change:
            if est.verbose:
                what = "Validation score" if self.validation is not None else "Training loss"
                print("%s did not improve more than tol=%f for %d consecutive epochs. Stopping."
                      % (what, est.tol, est.n_iter_no_change))
            self.stopped = True
            self.model.stop_training = True


class _BaseMLP(BaseEstimator):
    """Shared parameters, validation, network building and the training loop."""

    _is_classifier = False

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *, solver: str = "adam",
                 alpha: float = 0.0001, batch_size: Any = "auto", learning_rate_init: float = 0.001,
                 max_iter: int = 200, shuffle: bool = True, random_state: Any = None, tol: float = 1e-4,
                 verbose: bool = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8, n_iter_no_change: int = 10,
                 dropout: float = 0.0, dtype: Optional[str] = None) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dropout = dropout
        self.dtype = dtype

    # ----------------------------------------------------------------- parameters
    def _hidden_sizes(self) -> List[int]:
        sizes = self.hidden_layer_sizes
        if _is_int(sizes):
            sizes = [sizes]
        try:
            sizes = list(sizes)
        except TypeError:
            raise ValueError(f"hidden_layer_sizes must be a tuple of positive integers, "
                             f"received hidden_layer_sizes={self.hidden_layer_sizes!r}") from None
        if not all(_is_int(s) and s > 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be a tuple of positive integers, "
                             f"received hidden_layer_sizes={self.hidden_layer_sizes!r}")
        return [int(s) for s in sizes]

    def _check_params(self) -> None:
        self._hidden_sizes()
        act = self.activation
        if not isinstance(act, str) or _ACTIVATION_ALIASES.get(act, act) not in _activations.NAMES:
            names = ", ".join(list(_ACTIVATION_ALIASES) + [n for n in _activations.NAMES if n != "softmax"])
            raise ValueError(f"activation must be one of {names}; received activation={act!r}")
        if _ACTIVATION_ALIASES.get(act, act) == "softmax":
            raise ValueError("activation='softmax' is for output layers only; choose another hidden activation")
        if not isinstance(self.solver, str) or self.solver.lower() not in _optimizers.NAMES:
            raise ValueError(f"solver must be one of {', '.join(_optimizers.NAMES)}; received solver={self.solver!r}")
        if not (_is_real(self.alpha) and self.alpha >= 0):
            raise ValueError(f"alpha must be a non-negative number, received alpha={self.alpha!r}")
        if not (self.batch_size == "auto" or (_is_int(self.batch_size) and self.batch_size >= 1)):
            raise ValueError(f"batch_size must be 'auto' or a positive integer, "
                             f"received batch_size={self.batch_size!r}")
        if not (_is_real(self.learning_rate_init) and self.learning_rate_init > 0):
            raise ValueError(f"learning_rate_init must be a positive number, "
                             f"received learning_rate_init={self.learning_rate_init!r}")
        if not (_is_int(self.max_iter) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be a positive integer, received max_iter={self.max_iter!r}")
        if not (_is_real(self.tol) and self.tol >= 0):
            raise ValueError(f"tol must be a non-negative number, received tol={self.tol!r}")
        if not (_is_int(self.n_iter_no_change) and self.n_iter_no_change >= 1):
            raise ValueError(f"n_iter_no_change must be a positive integer, "
                             f"received n_iter_no_change={self.n_iter_no_change!r}")
        if not (_is_real(self.validation_fraction) and 0 < self.validation_fraction < 1):
            raise ValueError(f"validation_fraction must be in (0, 1), "
                             f"received validation_fraction={self.validation_fraction!r}")
        if not (_is_real(self.momentum) and 0 <= self.momentum <= 1):
            raise ValueError(f"momentum must be in [0, 1], received momentum={self.momentum!r}")
        for name in ("beta_1", "beta_2"):
            value = getattr(self, name)
            if not (_is_real(value) and 0 <= value < 1):
                raise ValueError(f"{name} must be in [0, 1), received {name}={value!r}")
        if not (_is_real(self.epsilon) and self.epsilon > 0):
            raise ValueError(f"epsilon must be a positive number, received epsilon={self.epsilon!r}")
        if not (_is_real(self.dropout) and 0 <= self.dropout < 1):
            raise ValueError(f"dropout must be in [0, 1), received dropout={self.dropout!r}")
        for name in ("shuffle", "early_stopping", "nesterovs_momentum", "warm_start"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, received {name}={getattr(self, name)!r}")
        if self.dtype is not None and self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be None, 'float32', 'float64' or 'mixed_bfloat16', "
                             f"received dtype={self.dtype!r}")

    def _optimizer(self) -> _optimizers.Optimizer:
        lr = float(self.learning_rate_init)
        solver = self.solver.lower()
        if solver == "sgd":
            return _optimizers.SGD(lr, momentum=float(self.momentum),
                                   nesterov=bool(self.nesterovs_momentum) and self.momentum > 0)
        if solver in ("adam", "adamw"):
            return _optimizers.get({"name": solver, "learning_rate": lr, "beta_1": float(self.beta_1),
                                    "beta_2": float(self.beta_2), "epsilon": float(self.epsilon)})
        return _optimizers.get({"name": solver, "learning_rate": lr})

    def _batch_size(self, n_samples: int) -> int:
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
                          UserWarning, stacklevel=3)
        return int(min(self.batch_size, n_samples))

    # ----------------------------------------------------------------- subclass hooks
    def _output(self) -> Tuple[int, str, str, float]:
        """(units, activation, loss, loss scale to scikit-learn's) for the fitted targets."""
        raise TypeError(f"{type(self).__name__} must define _output() (MLPClassifier and MLPRegressor do)")

    def _score_encoded(self, model: Sequential, x: np.ndarray, y: np.ndarray, w: Optional[np.ndarray] = None) -> float:
        """The validation score early stopping watches, on encoded targets (weighted by w)."""
        raise TypeError(f"{type(self).__name__} must define _score_encoded() (MLPClassifier and MLPRegressor do)")

    # ----------------------------------------------------------------- building and training
    def _build(self, n_features: int, batch_size: float, dtype: Any) -> Sequential:
        units, out_activation, loss, scale = self._output()
        l2 = float(self.alpha) / (2.0 * batch_size * scale)
        activation = _ACTIVATION_ALIASES.get(self.activation, self.activation)
        seed = int(self._random_state.randint(np.iinfo(np.int32).max))
        layers: List[_layers.Layer] = [_layers.Input(shape=(n_features,))]
        for i, width in enumerate(self._hidden_sizes()):
            layers.append(_layers.Dense(width, activation=activation, name=f"hidden_{i}",
                                        kernel_regularizer=_regularizers.L2(l2) if l2 > 0 else None))
            if self.dropout > 0:
                layers.append(_layers.Dropout(float(self.dropout), name=f"dropout_{i}"))
        layers.append(_layers.Dense(units, activation=out_activation, name="output",
                                    kernel_regularizer=_regularizers.L2(l2) if l2 > 0 else None))
        policy = "mixed_bfloat16" if self.dtype == "mixed_bfloat16" else np.dtype(dtype).name
        model = Sequential(layers, seed=seed, dtype=policy, name=type(self).__name__)
        model.compile(optimizer=self._optimizer(), loss=loss)
        self.n_layers_ = len(self._hidden_sizes()) + 2
        self.out_activation_ = {"sigmoid": "logistic", "linear": "identity"}.get(out_activation, out_activation)
        return model

    def _check_warm_start_features(self, X: np.ndarray, before: Dict[str, Any]) -> None:
        """A warm start continues the fitted network, so X must have its inputs; on a mismatch
        the fitted attributes that validate_data reset are put back before raising."""
        if self.warm_start and hasattr(self, "model_") and X.shape[1] != self.model_.input_size:
            for key in ("n_features_in_", "feature_names_in_"):
                if key in before:
                    setattr(self, key, before[key])
                elif hasattr(self, key):
                    delattr(self, key)
            raise ValueError(f"warm_start continues the fitted network, which takes {self.model_.input_size} "
                             f"features; X has {X.shape[1]} features")

    def _fitted_features(self) -> Dict[str, Any]:
        return {k: getattr(self, k) for k in ("n_features_in_", "feature_names_in_") if hasattr(self, k)}

    def _sample_weight(self, sample_weight: Any, X: np.ndarray) -> Optional[np.ndarray]:
        """Checked float64 weights (scikit-learn's checks, then lamina's), or None."""
        if sample_weight is None:
            return None
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if not sw.any():
            raise ValueError("sample_weight is all zero: no sample would count; sample weights must contain at "
                             "least one non-zero number")
        return sw

    def _train(self, X: np.ndarray, y: np.ndarray, incremental: bool, sw: Optional[np.ndarray] = None) -> None:
        """Trains ``model_`` (building it when needed) on validated ``X`` and encoded ``y``,
        weighted by the checked ``sw`` (see the module docstring)."""
        fresh = not hasattr(self, "model_") or (not incremental and not self.warm_start)
        if fresh:
            self._random_state = check_random_state(self.random_state)
            self.loss_curve_: List[float] = []
            self.best_loss_: Optional[float] = float(np.inf)
            self._no_improvement_count = 0
        self.n_iter_ = 0  # epochs of this call (loss_curve_ keeps growing), as in scikit-learn
        validation = None
        if self.early_stopping:
            stratify = y if self._is_classifier else None
            if sw is None:
                X, X_val, y, y_val = train_test_split(X, y, random_state=self._random_state,
                                                      test_size=self.validation_fraction, stratify=stratify)
                sw_val = None
            else:
                X, X_val, y, y_val, sw, sw_val = train_test_split(X, y, sw, random_state=self._random_state,
                                                                  test_size=self.validation_fraction,
                                                                  stratify=stratify)
                if not sw.any():
                    raise ValueError("sample_weight is all zero on the training part of the early-stopping split")
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                                 "or the size of your dataset.")
            validation = (X_val, y_val, sw_val)
            self.validation_scores_: List[float] = []
            self.best_validation_score_ = -np.inf
            self._best_weights = None
            self.best_loss_ = None
        batch_size = self._batch_size(X.shape[0])
        scale = self._output()[3]
        weights = None if sw is None else sw * (X.shape[0] / sw.sum())  # mean 1
        if fresh:
            weight_sum = batch_size * (1.0 if sw is None else float(sw.mean()))  # a batch's expected weight sum
            self.model_ = self._build(X.shape[1], weight_sum, X.dtype)
        stopper = _StopLikeSklearn(self, validation, scale)
        self.model_.num_threads = _threads_for(6.0 * batch_size * self.model_.count_params())
        self.model_.fit(X, y, batch_size=batch_size, epochs=1 if incremental else int(self.max_iter),
                        verbose=0, callbacks=[stopper], shuffle=bool(self.shuffle), sample_weight=weights)
        if validation is not None and self._best_weights is not None:
            self.model_.set_weights(self._best_weights)
        self._best_weights = None
        if not incremental and not stopper.stopped:
            warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the optimization "
                          "hasn't converged yet." % self.max_iter, ConvergenceWarning, stacklevel=3)

    def _validate_X(self, X: Any, reset: bool) -> np.ndarray:
        return validate_data(self, X, reset=reset, dtype=self._input_dtype(continuing=True))

    def _input_dtype(self, continuing: bool) -> Any:
        """What ``validate_data`` converts X to: the fitted model's dtype where it goes on being used
        (prediction, partial_fit, warm_start), else ``dtype``'s; None keeps float32 and float64 inputs
        and converts any other to float64."""
        if continuing and hasattr(self, "model_"):
            return _DTYPES[self.model_.dtype]
        return [np.float64, np.float32] if self.dtype is None else _DTYPES[self.dtype]

    def _forward(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = self._validate_X(X, reset=False)
        self.model_.num_threads = _threads_for(2.0 * min(X.shape[0], 1024) * self.model_.count_params())
        return self.model_.predict(X)

    # ----------------------------------------------------------------- fitted network views
    @property
    def coefs_(self) -> List[np.ndarray]:
        """Each Dense kernel, ``(inputs, units)`` as in scikit-learn: writable views into ``model_``."""
        check_is_fitted(self, "model_")
        return [l.kernel for l in self.model_.layers if isinstance(l, _layers.Dense)]

    @property
    def intercepts_(self) -> List[np.ndarray]:
        """Each Dense bias: writable views into ``model_``."""
        check_is_fitted(self, "model_")
        return [l.bias for l in self.model_.layers if isinstance(l, _layers.Dense) and l.bias is not None]

    # ----------------------------------------------------------------- pickling
    def __getstate__(self) -> Dict[str, Any]:
        # The fitted network lives in the C++ core: keep it as lamina's own model-file content
        # (a JSON-able header and plain numpy arrays) and rebuild it on unpickling.
        state = super().__getstate__()
        if "model_" in state:
            state = dict(state)
            header, arrays = _saving.payload(state.pop("model_"))
            state["_lamina_model"] = (header, [(name, np.array(a)) for name, a in arrays])
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        state = dict(state)
        saved = state.pop("_lamina_model", None)
        if saved is not None:
            header, arrays = saved
            state["model_"] = _saving.rebuild(Sequential, header, dict(arrays))
        super().__setstate__(state)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multi-layer perceptron classifier trained by lamina's core; scikit-learn's
    ``MLPClassifier`` parameters (see the module docstring for the mapping) plus ``dropout``
    and ``dtype``.

    Two classes give one sigmoid output unit and ``binary_crossentropy``; more give a softmax
    over the classes and ``sparse_categorical_crossentropy``. Labels may be any values
    ``np.unique`` sorts (ints, strings, ...); ``classes_`` holds them.

    Fitted attributes: ``classes_``, ``n_features_in_`` (``feature_names_in_`` for DataFrames),
    ``n_iter_``, ``loss_``, ``loss_curve_``, ``best_loss_`` (or ``validation_scores_`` and
    ``best_validation_score_`` with early stopping), ``n_layers_``, ``n_outputs_``,
    ``out_activation_``, ``coefs_`` / ``intercepts_`` and ``model_``, the ``lamina.Sequential``.

    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]] * 5)
    >>> y = np.array(["no", "yes", "yes", "yes"] * 5)  # logical OR
    >>> clf = MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.05, random_state=0).fit(X, y)
    >>> clf.classes_, clf.predict([[0.0, 0.0], [1.0, 1.0]])
    (array(['no', 'yes'], dtype='<U3'), array(['no', 'yes'], dtype='<U3'))
    """

    classes_: np.ndarray

    _is_classifier = True

    def _output(self) -> Tuple[int, str, str, float]:
        if len(self.classes_) == 2:
            return 1, "sigmoid", "binary_crossentropy", 1.0
        return len(self.classes_), "softmax", "sparse_categorical_crossentropy", 1.0

    def _validate_y(self, y: Any) -> np.ndarray:
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        return y

    def _encode(self, y: np.ndarray, dtype: Any) -> np.ndarray:
        codes = np.searchsorted(self.classes_, y)
        codes = np.clip(codes, 0, len(self.classes_) - 1)
        unseen = self.classes_[codes] != y
        if unseen.any():
            raise ValueError(f"y holds labels not in classes_={self.classes_.tolist()}: "
                             f"{np.unique(y[unseen]).tolist()}")
        return codes.astype(dtype)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "MLPClassifier":
        """Trains on ``X`` (n_samples, n_features) and labels ``y`` (n_samples,) for up to
        ``max_iter`` epochs, each sample's loss weighted by ``sample_weight`` (see the module
        docstring); returns ``self``."""
        self._check_params()
        before = self._fitted_features()
        X, y = validate_data(self, X, y, dtype=self._input_dtype(continuing=self.warm_start))
        self._check_warm_start_features(X, before)
        y = self._validate_y(y)
        sw = self._sample_weight(sample_weight, X)
        classes = np.unique(y)
        if sw is not None and len(np.unique(y[sw > 0])) < 2:
            raise ValueError(f"MLPClassifier needs samples of at least 2 classes with a non-zero sample_weight, "
                             f"but only class {np.unique(y[sw > 0])[0]!r} has any")
        if self.warm_start and hasattr(self, "classes_") and not np.array_equal(classes, self.classes_):
            raise ValueError(f"warm_start can only be used where y has the same classes as in the previous "
                             f"call to fit. Previously got {self.classes_}, y has {classes}")
        if len(classes) < 2:
            raise ValueError(f"MLPClassifier needs samples of at least 2 classes in the data, "
                             f"but the data contains only 1 class: {classes[0]!r}")
        self.classes_ = classes
        self.n_outputs_ = self._output()[0]
        self._train(X, self._encode(y, X.dtype), incremental=False, sw=sw)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None) -> "MLPClassifier":
        """One epoch over ``X``, ``y``, continuing from the current weights. The first call must
        give ``classes`` (every label ``y`` will ever hold), as in scikit-learn."""
        first = not hasattr(self, "model_")
        if self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        if first:
            self._check_params()
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            classes = np.unique(self._validate_y(np.asarray(classes)))
            if len(classes) < 2:
                raise ValueError(f"MLPClassifier needs at least 2 classes, received classes={classes.tolist()}")
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise ValueError(f"`classes={np.unique(classes)!r}` is not the same as on the first call "
                             f"to partial_fit, was: {self.classes_!r}")
        X, y = validate_data(self, X, y, dtype=self._input_dtype(continuing=True), reset=first)
        y = self._validate_y(y)
        sw = self._sample_weight(sample_weight, X)
        if first:
            self.classes_ = classes
            self.n_outputs_ = self._output()[0]
        self._train(X, self._encode(y, X.dtype), incremental=True, sw=sw)
        return self

    def _proba(self, out: np.ndarray) -> np.ndarray:
        out = np.asarray(out, dtype=np.float64)
        if len(self.classes_) == 2:
            p = out[:, 0]
            return np.column_stack([1.0 - p, p])
        return out / out.sum(axis=1, keepdims=True)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order."""
        return self._proba(self._forward(X))

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample."""
        codes = self._codes(self._forward(X))
        return self.classes_[codes]

    def _codes(self, out: np.ndarray) -> np.ndarray:
        if len(self.classes_) == 2:
            return (out[:, 0] > 0.5).astype(np.intp)
        return np.argmax(out, axis=1)

    def _score_encoded(self, model: Sequential, x: np.ndarray, y: np.ndarray, w: Optional[np.ndarray] = None) -> float:
        return float(np.average(self._codes(model.predict(x)) == y, weights=w))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multi-layer perceptron regressor trained by lamina's core (mean squared error, linear
    outputs); scikit-learn's ``MLPRegressor`` parameters (see the module docstring for the
    mapping) plus ``dropout`` and ``dtype``.

    ``y`` may be 1-D (one target) or 2-D (``n_outputs_`` targets); ``predict`` returns a 1-D
    array for a single target, as scikit-learn's does.

    Fitted attributes: ``n_features_in_``, ``n_outputs_``, ``n_iter_``, ``loss_``,
    ``loss_curve_``, ``best_loss_`` (or ``validation_scores_`` and ``best_validation_score_``),
    ``n_layers_``, ``out_activation_``, ``coefs_`` / ``intercepts_`` and ``model_``.

    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]] * 5)
    >>> reg = MLPRegressor(hidden_layer_sizes=(8,), learning_rate_init=0.05, random_state=0).fit(X, X.sum(axis=1))
    >>> reg.out_activation_, reg.predict(X[:3]).shape, reg.score(X, X.sum(axis=1)) > 0.9
    ('identity', (3,), True)
    """

    n_outputs_: int

    def _output(self) -> Tuple[int, str, str, float]:
        return self.n_outputs_, "linear", "mean_squared_error", self.n_outputs_ / 2.0

    def _prepare_y(self, y: np.ndarray, dtype: Any) -> np.ndarray:
        y = y.reshape(len(y), -1) if y.ndim == 1 else y
        return y.astype(dtype)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "MLPRegressor":
        """Trains on ``X`` (n_samples, n_features) and targets ``y`` (n_samples,) or
        (n_samples, n_outputs) for up to ``max_iter`` epochs, each sample's loss weighted by
        ``sample_weight`` (see the module docstring); returns ``self``."""
        self._check_params()
        before = self._fitted_features()
        X, y = validate_data(self, X, y, dtype=self._input_dtype(continuing=self.warm_start), multi_output=True,
                             y_numeric=True)
        self._check_warm_start_features(X, before)
        sw = self._sample_weight(sample_weight, X)
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if self.warm_start and hasattr(self, "n_outputs_") and n_outputs != self.n_outputs_:
            raise ValueError(f"warm_start needs y with {self.n_outputs_} outputs as before, received {n_outputs}")
        self.n_outputs_ = n_outputs
        self._train(X, self._prepare_y(y, X.dtype), incremental=False, sw=sw)
        return self

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> "MLPRegressor":
        """One epoch over ``X``, ``y``, continuing from the current weights."""
        first = not hasattr(self, "model_")
        if self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        if first:
            self._check_params()
        X, y = validate_data(self, X, y, dtype=self._input_dtype(continuing=True), multi_output=True, y_numeric=True,
                             reset=first)
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if first:
            self.n_outputs_ = n_outputs
        elif n_outputs != self.n_outputs_:
            raise ValueError(f"y must have {self.n_outputs_} outputs as before, received {n_outputs}")
        sw = self._sample_weight(sample_weight, X)
        self._train(X, self._prepare_y(y, X.dtype), incremental=True, sw=sw)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets: shape (n_samples,) for one output, else (n_samples, n_outputs)."""
        out = np.asarray(self._forward(X), dtype=np.float64)
        return out[:, 0] if out.shape[1] == 1 else out

    def _score_encoded(self, model: Sequential, x: np.ndarray, y: np.ndarray, w: Optional[np.ndarray] = None) -> float:
        from sklearn.metrics import r2_score

        return float(r2_score(y, np.asarray(model.predict(x), dtype=np.float64), sample_weight=w))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
