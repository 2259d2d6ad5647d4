"""Export a trained ``Sequential`` to ONNX, for inference anywhere ONNX Runtime (or any other
ONNX backend) runs.

>>> import os, tempfile
>>> import lamina as lm
>>> from lamina.onnx import export
>>> model = lm.Sequential([lm.layers.Dense(8, activation="relu", input_shape=(4,)),
...                        lm.layers.Dense(3, activation="softmax")], seed=0)
>>> path = os.path.join(tempfile.mkdtemp(), "model.onnx")
>>> [node.op_type for node in export(model, path).graph.node]
['Gemm', 'Relu', 'Gemm', 'Softmax']
>>> import shutil; shutil.rmtree(os.path.dirname(path))

To run a file with ONNX Runtime (``pip install onnxruntime``)::

    import onnxruntime as ort
    session = ort.InferenceSession("model.onnx")
    probs = session.run(["output"], {"input": x_test.astype("float32")})[0]

The graph takes ``input``, float32 ``[N, *input shape]`` (``N`` is dynamic; ``[N, features]`` or,
for an image model, e.g. ``[N, 28, 28]``), and returns ``output``, float32 ``[N, units]``: what
``model.predict`` returns, within float32 rounding.

=======================  ===========================================================
lamina                   ONNX
=======================  ===========================================================
image-shaped input       ``Flatten(axis=1)`` (the core's layout: samples flat)
attached standardizer    ``Sub(mean)``, ``Div(scale)``
``Dense``                ``Gemm(x, kernel, bias)`` (``MatMul`` without a bias)
``relu``                 ``Relu``
``leaky_relu``           ``LeakyRelu(alpha=0.2)``
``elu``                  ``Elu(alpha=1)``
``sigmoid``              ``Sigmoid``
``tanh``                 ``Tanh``
``softmax``              ``Softmax(axis=-1)``
``softplus``             ``Softplus``
``gelu`` (exact)         ``0.5 * x * (1 + Erf(x / sqrt(2)))``
``linear``               nothing
``Activation(name)``     the activation's nodes, as above
``Flatten``, ``Reshape``  nothing (samples stay flat)
``BatchNormalization``   folded into the preceding linear ``Dense`` (kernel and bias
                         rescaled); elsewhere ``Mul(a)``, ``Add(b)``: its moving-statistics affine map
``LayerNormalization``   ``LayerNormalization`` (opset 17 on), else ReduceMean/Sub/Div nodes
``Normalization``        as ``BatchNormalization``: ``Mul``, ``Add`` (or folded)
``Dropout``              nothing (inference)
augmentation layers      nothing (the identity at inference)
=======================  ===========================================================

A float64 model is written as a float32 graph (weights rounded to float32). The model's
``get_config()`` is stored in the file's metadata under ``lamina_config``.
The ``onnx`` package is needed (``pip install lamina[onnx]``); ``import lamina`` does not load it.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, List, Set

import numpy as np

from lamina import _core, augmentation, normalization
from lamina import _validation as check
from lamina._validation import describe
from lamina.layers import Activation, Dense, Dropout, Flatten, Reshape

__all__ = ["export"]


# Layers that are an affine map a * x + b per feature at inference.
_AFFINE = (normalization.BatchNormalization, normalization.Normalization)


def _folds(layer: Any) -> bool:
    """A BatchNormalization right after this layer folds into it: a Dense without activation."""
    return isinstance(layer, Dense) and layer.activation == "linear"

_MIN_OPSET = 13  # Softmax with per-axis semantics; Gemm, Erf, Softplus all exist by then


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("lamina.onnx.export needs the onnx package: pip install lamina[onnx] "
                          "(or pip install onnx)") from exc
    return onnx


def export(model: Any, path: Any, opset: int = 17) -> Any:
    """Writes ``model`` (a built lamina ``Sequential``) to ``path`` as an ONNX graph with input
    ``"input"`` and output ``"output"`` (see the module docstring for the mapping), checks it with
    ``onnx.checker.check_model`` and returns the ``onnx.ModelProto``.

    ``opset`` is the ONNX operator-set version (13 up to what the installed onnx knows); the
    file's IR version is the lowest that opset allows, so older runtimes can read it too.

    >>> import os, tempfile
    >>> model = lm.Sequential([lm.layers.Dense(3, activation="softmax", input_shape=(4,))], seed=0)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     proto = export(model, os.path.join(tmp, "model.onnx"), opset=13)
    >>> proto.graph.input[0].name, proto.graph.output[0].name, proto.opset_import[0].version
    ('input', 'output', 13)
    """
    if not all(hasattr(model, name) for name in ("layers", "get_config", "standardizer", "built")):
        raise TypeError(f"export() takes a lamina Sequential model, received {describe(model)}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, received path={describe(path)}")
    onnx = _import_onnx()
    from onnx import TensorProto, helper, numpy_helper

    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not _MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an integer in [{_MIN_OPSET}, {newest}], received opset={describe(opset)}")
    check.require_built(model, "export")
    identity_at_inference = (Dropout, Flatten, Reshape) + augmentation.LAYERS
    for layer in model.layers:
        if not isinstance(layer, (Dense, Activation) + normalization.LAYERS + identity_at_inference):
            raise ValueError(f"export() cannot convert layer {layer.name!r} of type {type(layer).__name__}")

    nodes: List[Any] = []
    initializers: List[Any] = []
    names: Set[str] = set()

    def fresh(base: str) -> str:
        name, i = base, 1
        while name in names:
            name, i = f"{base}_{i}", i + 1
        names.add(name)
        return name

    def constant(base: str, value: Any) -> str:
        name = fresh(base)
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def node(op: str, inputs: List[str], base: str, **attrs: Any) -> str:
        out = fresh(base)
        nodes.append(helper.make_node(op, inputs, [out], name=fresh(f"{base}/{op}"), **attrs))
        return out

    names.update(("input", "output"))
    current = "input"
    dims = tuple(int(d) for d in model.input_dims or ())
    if len(dims) > 1:
        current = node("Flatten", [current], "input/flat", axis=1)
    if model.standardizer is not None:
        mean = constant("standardizer/mean", model.standardizer.mean_)
        scale = constant("standardizer/scale", model.standardizer.scale_)
        current = node("Div", [node("Sub", [current, mean], "standardizer/centered"), scale], "standardizer/out")

    def activation(act: str, current: str, prefix: str, layer: Any) -> str:
        if act == "relu":
            current = node("Relu", [current], f"{prefix}/relu")
        elif act == "leaky_relu":
            current = node("LeakyRelu", [current], f"{prefix}/leaky_relu", alpha=0.2)
        elif act == "elu":
            current = node("Elu", [current], f"{prefix}/elu", alpha=1.0)
        elif act == "sigmoid":
            current = node("Sigmoid", [current], f"{prefix}/sigmoid")
        elif act == "tanh":
            current = node("Tanh", [current], f"{prefix}/tanh")
        elif act == "softmax":
            current = node("Softmax", [current], f"{prefix}/softmax", axis=-1)
        elif act == "softplus":
            current = node("Softplus", [current], f"{prefix}/softplus")
        elif act == "gelu":  # exact GELU: 0.5 * x * (1 + erf(x / sqrt(2)))
            x = current
            scaled = node("Div", [x, constant(f"{prefix}/sqrt2", math.sqrt(2.0))], f"{prefix}/gelu/scaled")
            erf = node("Erf", [scaled], f"{prefix}/gelu/erf")
            one_plus = node("Add", [erf, constant(f"{prefix}/one", 1.0)], f"{prefix}/gelu/one_plus")
            half_x = node("Mul", [x, constant(f"{prefix}/half", 0.5)], f"{prefix}/gelu/half_x")
            current = node("Mul", [half_x, one_plus], f"{prefix}/gelu")
        elif act != "linear":
            raise ValueError(f"export() cannot convert activation {act!r} of layer {layer.name!r}")
        return current

    def layer_norm(layer: Any, current: str) -> str:
        prefix = layer.name
        gamma = layer.gamma if layer.scale else np.ones(layer.beta.shape)
        beta = layer.beta if layer.center else np.zeros(gamma.shape)
        if opset >= 17:
            return node("LayerNormalization", [current, constant(f"{prefix}/gamma", gamma),
                                               constant(f"{prefix}/beta", beta)], f"{prefix}/out", axis=-1,
                        epsilon=float(layer.epsilon))
        centered = node("Sub", [current, node("ReduceMean", [current], f"{prefix}/mean", axes=[-1])], f"{prefix}/centered")
        var = node("ReduceMean", [node("Mul", [centered, centered], f"{prefix}/squares")], f"{prefix}/var", axes=[-1])
        std = node("Sqrt", [node("Add", [var, constant(f"{prefix}/epsilon", layer.epsilon)], f"{prefix}/var_eps")],
                   f"{prefix}/std")
        scaled = node("Mul", [node("Div", [centered, std], f"{prefix}/xhat"), constant(f"{prefix}/gamma", gamma)],
                      f"{prefix}/scaled")
        return node("Add", [scaled, constant(f"{prefix}/beta", beta)], f"{prefix}/out")

    computing = [layer for layer in model.layers if not isinstance(layer, identity_at_inference)]
    for i, layer in enumerate(computing):
        prefix = layer.name
        if isinstance(layer, Activation):
            current = activation(layer.activation, current, prefix, layer)
            continue
        if isinstance(layer, normalization.LayerNormalization):
            current = layer_norm(layer, current)
            continue
        if isinstance(layer, _AFFINE):
            if i > 0 and _folds(computing[i - 1]):
                continue  # folded into the Dense before it
            a, b = layer.inference_affine()
            current = node("Add", [node("Mul", [current, constant(f"{prefix}/scale", a)], f"{prefix}/scaled"),
                                   constant(f"{prefix}/offset", b)], f"{prefix}/out")
            continue
        assert isinstance(layer, Dense)  # the check above admits nothing else
        weights, bias = layer.kernel.astype(np.float64), layer.bias
        following = computing[i + 1] if i + 1 < len(computing) else None
        if _folds(layer) and isinstance(following, _AFFINE):
            # BN(x W + c) = x (W a) + (c a + b): one Gemm, as the core's Dense epilogue would be.
            a, b = following.inference_affine()
            weights = weights * a
            bias = (0.0 if bias is None else bias.astype(np.float64)) * a + b
        kernel = constant(f"{prefix}/kernel", weights)
        if bias is not None:
            current = node("Gemm", [current, kernel, constant(f"{prefix}/bias", bias)], f"{prefix}/linear")
        else:
            current = node("MatMul", [current, kernel], f"{prefix}/linear")
        current = activation(layer.activation, current, prefix, layer)

    # Name the last tensor "output" (an Identity only when the graph would otherwise be empty).
    if nodes:
        last = nodes[-1]
        last.output[0] = "output"
    else:
        nodes.append(helper.make_node("Identity", [current], ["output"], name="output/Identity"))

    graph = helper.make_graph(
        nodes, model.name,
        inputs=[helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *dims])],
        outputs=[helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", int(model.output_size)])],
        initializer=initializers,
    )
    opset_id = helper.make_opsetid("", int(opset))
    proto = helper.make_model(graph, opset_imports=[opset_id], producer_name="lamina", producer_version=_core.__version__,
                              doc_string=f"lamina Sequential {model.name!r} exported for inference")
    proto.ir_version = helper.find_min_ir_version_for([opset_id])
    helper.set_model_props(proto, {"lamina_config": json.dumps(model.get_config(), sort_keys=True)})
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, os.fspath(path))
    return proto
