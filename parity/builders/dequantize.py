"""Turn ONNX Runtime's dynamic int8 quantization back into a float32 graph.

``quantize_dynamic`` keeps each weight as int8/uint8 values with a scale and zero point and
quantizes activations at run time (``DynamicQuantizeLinear``). Rewriting every integer op as
its float op on ``(q - zero_point) * scale`` weights and the unquantized activation gives a
float model whose weights are within half a quantization step of the original ones.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from parity.core.errors import ParityError
from parity.core.graph import GraphIndex, UniqueNames, prune_dead

__all__ = ["DequantizeReport", "dequantize"]


@dataclass(frozen=True)
class DequantizeReport:
    """What was rewritten: integer ops by type, and the graph's node count before and after."""

    rewritten: dict[str, int]
    nodes_before: int
    nodes_after: int


def _dequantized(
    index: GraphIndex, values: str, zero_point: str | None, scale: np.ndarray
) -> np.ndarray:
    quantized = index.array(values)
    if quantized is None:
        raise ParityError(f"dequantize: {values} is computed at run time, expected an initializer")
    zero = index.array(zero_point) if zero_point else None
    if zero is None:
        zero = np.zeros((), dtype=quantized.dtype)
    return (quantized.astype(np.float32) - zero.astype(np.float32)) * scale.astype(np.float32)


class _Rewriter:
    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.index = GraphIndex(model.graph)
        self.names = UniqueNames(model)
        self.replace: dict[int, list[onnx.NodeProto]] = {}
        self.counts: Counter[str] = Counter()
        self.new_initializers: list[onnx.TensorProto] = []
        # ALBERT shares one set of weights across its layers: one float copy per weight.
        self.weight_names: dict[tuple[str, bytes], str] = {}

    def fail(self, node: onnx.NodeProto, what: str) -> ParityError:
        return ParityError(
            f"dequantize: {node.op_type} node {node.name!r}: {what}; "
            "only onnxruntime quantize_dynamic output is supported"
        )

    def float_source(self, node: onnx.NodeProto, quantized: str) -> str:
        producer = self.index.producer(quantized)
        if producer is None or producer.op_type != "DynamicQuantizeLinear":
            raise self.fail(node, f"input {quantized!r} does not come from DynamicQuantizeLinear")
        return producer.input[0]

    def add_weight(self, base: str, array: np.ndarray) -> str:
        array = np.ascontiguousarray(array, dtype=np.float32)
        key = (base, array.tobytes())
        if key not in self.weight_names:
            name = self.names(base.removesuffix("_quantized"))
            self.new_initializers.append(numpy_helper.from_array(array, name))
            self.weight_names[key] = name
        return self.weight_names[key]

    def scale_tail(self, node: onnx.NodeProto) -> tuple[onnx.NodeProto, str | None, np.ndarray]:
        """Follow int32 output -> [Add bias] -> Cast -> Mul(scale); return (Mul, bias, w_scale)."""
        output, bias = node.output[0], None
        add = self.index.only_consumer(output, "Add")
        if add is not None:
            bias = next(name for name in add.input if name != output)
            output = add.output[0]
        cast = self.index.only_consumer(output, "Cast")
        if cast is None:
            raise self.fail(node, "integer output is not followed by a Cast")
        mul = self.index.only_consumer(cast.output[0], "Mul")
        if mul is None:
            raise self.fail(node, "Cast is not followed by the scale Mul")
        scales = next(name for name in mul.input if name != cast.output[0])
        product = self.index.producer(scales)
        weight_scale = None
        if product is not None and product.op_type == "Mul":
            weight_scale = next(
                (self.index.array(n) for n in product.input if self.index.array(n) is not None),
                None,
            )
        if weight_scale is None:
            raise self.fail(node, "cannot find the weight scale")
        return mul, bias, weight_scale

    def float_bias(self, node: onnx.NodeProto, quantized_bias: str, channels: int) -> str:
        """The float bias initializer that the run-time bias quantization reads."""
        frontier, seen = [quantized_bias], set()
        while frontier:
            name = frontier.pop()
            if name in seen:
                continue
            seen.add(name)
            value = self.index.array(name)
            if value is not None and value.dtype == np.float32 and value.shape == (channels,):
                return name
            producer = self.index.producer(name)
            if producer is not None and producer.op_type != "DynamicQuantizeLinear":
                frontier.extend(n for n in producer.input if n)
        raise self.fail(node, "cannot find the float bias behind the quantized bias")

    def matmul(self, node: onnx.NodeProto) -> None:
        mul, _, scale = self.scale_tail(node)
        weight = _dequantized(self.index, node.input[1], _opt(node, 3), scale)
        activation = self.float_source(node, node.input[0])
        name = self.add_weight(node.input[1], weight)
        replacement = helper.make_node(
            "MatMul",
            [activation, name],
            [mul.output[0]],
            name=self.names(node.name.removesuffix("_quant")),
        )
        self.replace[id(mul)] = [replacement]
        self.counts["MatMulInteger"] += 1

    def conv(self, node: onnx.NodeProto) -> None:
        mul, quantized_bias, scale = self.scale_tail(node)
        values = self.index.array(node.input[1])
        if values is None:
            raise self.fail(node, "weight is computed at run time")
        channel_scale = scale.reshape(-1, *([1] * (values.ndim - 1))) if scale.size > 1 else scale
        weight = _dequantized(self.index, node.input[1], _opt(node, 3), channel_scale)
        inputs = [self.float_source(node, node.input[0]), self.add_weight(node.input[1], weight)]
        if quantized_bias is not None:
            inputs.append(self.float_bias(node, quantized_bias, weight.shape[0]))
        replacement = helper.make_node(
            "Conv", inputs, [mul.output[0]], name=self.names(node.name.removesuffix("_quant"))
        )
        replacement.attribute.extend(node.attribute)
        self.replace[id(mul)] = [replacement]
        self.counts["ConvInteger"] += 1

    def lstm(self, node: onnx.NodeProto) -> None:
        # DynamicQuantizeLSTM stores W as [dirs, input, 4*hidden] and R as [dirs, hidden,
        # 4*hidden], transposed from ONNX LSTM's [dirs, 4*hidden, input]; gate order is the same.
        inputs = list(node.input) + [""] * (12 - len(node.input))
        weights = []
        for values, scale_name, zero_name in ((1, 8, 9), (2, 10, 11)):
            scale = self.index.array(inputs[scale_name])
            zero = inputs[zero_name]
            if scale is None:
                raise self.fail(node, "weight scale is computed at run time")
            shape = (-1, 1, 1) if scale.ndim == 1 else (scale.shape[0], 1, scale.shape[1])
            zero_array = self.index.array(zero) if zero else None
            quantized = self.index.array(inputs[values])
            if quantized is None:
                raise self.fail(node, "weight is computed at run time")
            zero_value = (
                np.zeros(shape, np.float32)
                if zero_array is None
                else zero_array.astype(np.float32).reshape(shape)
            )
            weight = (quantized.astype(np.float32) - zero_value) * scale.reshape(shape)
            weights.append(self.add_weight(inputs[values], weight.transpose(0, 2, 1)))
        lstm_inputs = [inputs[0], *weights, *inputs[3:8]]
        while lstm_inputs and not lstm_inputs[-1]:
            lstm_inputs.pop()
        replacement = helper.make_node(
            "LSTM",
            lstm_inputs,
            list(node.output),
            name=self.names(node.name.removesuffix("_quant")),
        )
        replacement.attribute.extend(node.attribute)
        self.replace[id(node)] = [replacement]
        self.counts["DynamicQuantizeLSTM"] += 1

    def gather(self, node: onnx.NodeProto) -> None:
        """Gather on quantized rows + DequantizeLinear becomes Gather on float rows."""
        dequant = self.index.only_consumer(node.output[0], "DequantizeLinear")
        if dequant is None or self.index.array(node.input[0]) is None:
            return
        scale = self.index.array(dequant.input[1])
        if scale is None:
            raise self.fail(dequant, "scale is computed at run time")
        table = _dequantized(self.index, node.input[0], _opt(dequant, 2), scale)
        replacement = helper.make_node(
            "Gather",
            [self.add_weight(node.input[0], table), node.input[1]],
            [dequant.output[0]],
            name=self.names(node.name.removesuffix("_quant")),
        )
        replacement.attribute.extend(node.attribute)
        self.replace[id(dequant)] = [replacement]
        self.counts["Gather+DequantizeLinear"] += 1

    def run(self) -> None:
        handlers = {
            "MatMulInteger": self.matmul,
            "ConvInteger": self.conv,
            "DynamicQuantizeLSTM": self.lstm,
            "Gather": self.gather,
        }
        for node in list(self.model.graph.node):
            handler = handlers.get(node.op_type)
            if handler is not None:
                handler(node)
        nodes: list[onnx.NodeProto] = []
        for node in self.model.graph.node:
            nodes.extend(self.replace.get(id(node), [node]))
        del self.model.graph.node[:]
        self.model.graph.node.extend(nodes)
        self.model.graph.initializer.extend(self.new_initializers)


def _opt(node: onnx.NodeProto, position: int) -> str | None:
    return node.input[position] if len(node.input) > position and node.input[position] else None


def dequantize(model: onnx.ModelProto) -> tuple[onnx.ModelProto, DequantizeReport]:
    """A float32 copy of a ``quantize_dynamic`` model, and what was rewritten."""
    model_copy = onnx.ModelProto()
    model_copy.CopyFrom(model)
    before = len(model_copy.graph.node)
    rewriter = _Rewriter(model_copy)
    rewriter.run()
    prune_dead(model_copy.graph)
    left = sorted(
        {n.op_type for n in model_copy.graph.node}
        & {"MatMulInteger", "ConvInteger", "DynamicQuantizeLSTM", "DynamicQuantizeLinear"}
    )
    if left:
        raise ParityError(f"dequantize: {', '.join(left)} still in the graph after rewriting")
    report = DequantizeReport(dict(rewriter.counts), before, len(model_copy.graph.node))
    return model_copy, report
