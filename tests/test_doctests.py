"""Every runnable example in lamina's docstrings runs and prints what it says."""

import doctest
import importlib
import importlib.util
import inspect

import numpy as np
import pytest

import lamina as lm

MODULES = [
    "lamina", "lamina.models", "lamina.layers", "lamina.activations", "lamina.initializers",
    "lamina.regularizers", "lamina.losses", "lamina.optimizers", "lamina.metrics", "lamina.callbacks",
    "lamina.gradcheck", "lamina.data", "lamina.datasets", "lamina.utils", "lamina.io", "lamina.saving", "lamina.plotting",
    "lamina.onnx", "lamina.sklearn", "lamina.dtype_policies",
]
# Modules whose examples need an optional extra.
EXTRAS = {"lamina.onnx": "onnxruntime", "lamina.sklearn": "sklearn"}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run_as_written(name):
    if name in EXTRAS:
        pytest.importorskip(EXTRAS[name])
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"np": np, "lm": lm}, report=False,
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (run doctest -v)"


def test_every_public_name_has_a_docstring():
    undocumented = []
    for name in lm.__all__:
        obj = getattr(lm, name)
        if callable(obj) and not (obj.__doc__ or "").strip():
            undocumented.append(name)
    for module in (lm.layers, lm.losses, lm.optimizers, lm.metrics, lm.callbacks, lm.regularizers):
        for attr in dir(module):
            obj = getattr(module, attr)
            if isinstance(obj, type) and obj.__module__ == module.__name__ and not attr.startswith("_"):
                if not (obj.__doc__ or "").strip():
                    undocumented.append(f"{module.__name__}.{attr}")
    assert undocumented == []


# Names a module merely re-imports from lamina's internals: they are documented where they live.
_HELPERS = {"lamina._validation", "lamina.progress"}
_INTERNAL = {"lamina.callbacks.CallbackList"}


def test_every_public_name_has_a_runnable_example():
    missing = []
    for module_name in MODULES:
        if module_name in EXTRAS and importlib.util.find_spec(EXTRAS[module_name]) is None:
            continue  # its examples cannot run here; the parametrized doctest test skips it too
        module = importlib.import_module(module_name)
        for attr, obj in vars(module).items():
            if attr.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            home = getattr(obj, "__module__", "") or ""
            if not home.startswith("lamina") or home in _HELPERS or f"{home}.{obj.__qualname__}" in _INTERNAL:
                continue
            if ">>>" not in (obj.__doc__ or ""):
                missing.append(f"{module_name}.{attr}")
    assert missing == [], f"public names without a runnable example: {missing}"
