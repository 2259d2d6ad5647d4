"""The typed contract between Python and the C++ core: enums and structs, not string-keyed dicts.

Python holds the only defaults and sends every field; Python's name lists are the core's enums; a
misspelled field is an error, never a silent fallback.
"""

import inspect

import numpy as np
import pytest

import lamina as lm
from lamina import _core

OPTIMIZERS = [lm.optimizers.SGD, lm.optimizers.RMSprop, lm.optimizers.Adagrad, lm.optimizers.Adam,
              lm.optimizers.AdamW]
# A value for every hyperparameter that differs from every default, to catch a dropped field.
CHANGED = {"momentum": 0.25, "nesterov": True, "rho": 0.75, "centered": True, "beta_1": 0.7, "beta_2": 0.9,
           "amsgrad": True, "epsilon": 3e-5, "initial_accumulator_value": 0.3, "weight_decay": 0.02}


def _model():
    return lm.Sequential([lm.layers.Dense(3, activation="tanh", input_shape=(2,)), lm.layers.Dense(1)], seed=0)


def _assert_core_holds(core, opt):
    assert core.kind == _core.OptimizerKind[opt.name]
    for key, value in opt.get_config().items():
        if key != "name":
            assert getattr(core, key) == value, key
    for key in ("clipnorm", "clipvalue", "global_clipnorm"):
        assert getattr(core, key) == (getattr(opt, key) or 0.0), key


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("changed", [False, True], ids=["defaults", "every_field_changed"])
def test_every_python_optimizer_config_reaches_the_core_unchanged(cls, changed):
    params = inspect.signature(cls).parameters
    kwargs = {k: v for k, v in CHANGED.items() if k in params} if changed else {}
    if changed:
        kwargs.update(learning_rate=0.0375, clipnorm=0.5)
    opt = cls(**kwargs)
    model = _model()
    model.compile(optimizer=opt, loss="mse")
    _assert_core_holds(model._net.optimizer_config(), opt)
    _assert_core_holds(_core.Optimizer64(opt._core_config(), 4).config, opt)


def test_adagrad_default_learning_rate_is_pythons_in_the_core():
    # The core's own struct default (0.01) used to differ from Adagrad's (0.001); Python's wins.
    model = _model()
    model.compile(optimizer="adagrad", loss="mse")
    assert model._net.optimizer_config().learning_rate == lm.optimizers.Adagrad().learning_rate == 0.001


def test_loss_and_layer_specs_reach_the_core_unchanged():
    model = lm.Sequential([lm.layers.Dense(4, activation="relu", use_bias=False, input_shape=(3,),
                                           kernel_initializer=lm.initializers.RandomNormal(mean=0.5, stddev=2.0),
                                           kernel_regularizer=lm.regularizers.L1L2(l1=0.01, l2=0.02)),
                           lm.layers.Dropout(0.25), lm.layers.Dense(2)], seed=0)
    model.compile(optimizer="sgd", loss=lm.losses.Huber(delta=2.5))
    loss = model._net.loss_config()
    assert (loss.kind, loss.from_logits, loss.delta) == (_core.Loss.huber, False, 2.5)
    dense, dropout = model.layers[0]._core_spec((3,)), model.layers[1]._core_spec((4,))
    assert (dense.kind, dense.units, dense.activation, dense.use_bias) == (_core.LayerKind.dense, 4,
                                                                           _core.Activation.relu, False)
    init = dense.kernel_initializer
    assert (init.kind, init.value, init.value2) == (_core.InitKind.random_normal, 0.5, 2.0)
    assert (dense.l1, dense.l2) == (0.01, 0.02)
    assert (dropout.kind, dropout.rate) == (_core.LayerKind.dropout, 0.25)


def _structs():
    init = _core.Initializer(kind=_core.InitKind.zeros, value=0.0, value2=0.0)
    return [init, _core.LayerSpec.dropout(rate=0.5),
            _core.LayerSpec.dense(units=2, activation=_core.Activation.relu, use_bias=True, kernel_initializer=init,
                                  bias_initializer=init, l1=0.0, l2=0.0),
            _core.LossConfig(kind=_core.Loss.huber, from_logits=False, delta=1.0),
            lm.optimizers.Adam()._core_config()]


@pytest.mark.parametrize("struct", _structs(), ids=lambda s: type(s).__name__)
def test_core_structs_reject_a_misspelled_attribute(struct):
    with pytest.raises(AttributeError):
        struct.learning_rat = 0.5
    assert not hasattr(struct, "learning_rat")


def test_core_struct_constructors_take_every_field_by_keyword_with_no_default():
    full = {"kind": _core.Loss.huber, "from_logits": False, "delta": 1.0}
    with pytest.raises(TypeError):
        _core.LossConfig(**full, delt=1.0)  # a misspelled key is an error
    with pytest.raises(TypeError):
        _core.LossConfig(kind=_core.Loss.huber, from_logits=False)  # a missing field has no silent default
    with pytest.raises(TypeError):
        _core.LossConfig(_core.Loss.huber, False, 1.0)  # keywords only
    config = lm.optimizers.SGD()._core_config()
    fields = {k: getattr(config, k) for k in dir(config) if not k.startswith("_")}
    for key in fields:
        with pytest.raises(TypeError):
            _core.OptimizerConfig(**{k: v for k, v in fields.items() if k != key})


def test_python_name_lists_are_the_cores_enums():
    assert lm.activations.NAMES == tuple(_core.Activation.__members__)
    assert lm.losses.NAMES == tuple(_core.Loss.__members__)
    assert lm.optimizers.NAMES == tuple(_core.OptimizerKind.__members__)
    assert set(lm.initializers.NAMES) | {"constant"} == set(_core.InitKind.__members__)
    for name in lm.losses.NAMES:
        assert lm.losses.get(name).name == name  # every core loss has a Python class
    for name in lm.optimizers.NAMES:
        assert lm.optimizers.get(name).name == name
    modes = {lm.metrics.ARGMAX_ONEHOT, lm.metrics.ARGMAX_SPARSE, lm.metrics.THRESHOLD}
    assert modes | {"none"} == set(_core.MetricMode.__members__)


@pytest.mark.parametrize("call,match", [
    (lambda: lm.layers.Dense(3, activation="swish"), "activation='swish'"),
    (lambda: _model().compile(optimizer="sgdd", loss="mse"), "optimizer='sgdd'"),
    (lambda: _model().compile(optimizer="sgd", loss="hinge"), "loss='hinge'"),
    (lambda: lm.layers.Dense(3, kernel_initializer="xavier_norm"), "kernel_initializer='xavier_norm'"),
])
def test_unknown_names_raise_a_value_error_naming_argument_and_value(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _bindings():
    for name, obj in vars(_core).items():
        if callable(obj) and getattr(obj, "__doc__", None) and not isinstance(obj, type):
            yield name, obj
        elif isinstance(obj, type):
            for attr, member in vars(obj).items():
                doc = getattr(member, "__doc__", None) or ""
                if callable(member) and ("(self" in doc or isinstance(member, staticmethod)):
                    yield f"{name}.{attr}", getattr(obj, attr)


@pytest.mark.parametrize("name,binding", list(_bindings()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_binding_names_its_arguments(name, binding):
    # pybind11 writes arg0, arg1, ... for arguments bound without py::arg: keyword calls fail.
    assert "arg0" not in binding.__doc__ and "arg1" not in binding.__doc__, binding.__doc__


def test_network_takes_typed_specs_and_rejects_dicts():
    with pytest.raises(TypeError):
        _core.Network64(2, [{"kind": "dense", "units": 1}], 0)
    spec = lm.layers.Dense(1)._core_spec((2,))
    net = _core.Network64(input_dim=2, layers=[spec], seed=0)
    assert (net.input_dim, net.output_dim, net.param_count) == (2, 1, 3)
    assert np.isfinite(net.parameters()).all()
