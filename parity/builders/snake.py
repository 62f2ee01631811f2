"""Kokoro's AdaIN + Snake chains, rewritten with fewer passes over the activations.

Each resblock step runs ``y = InstanceNorm(x) * (1 + gamma) + beta`` (gamma and beta come from
the style vector at run time) and then Snake, ``y + sin(a * y)^2 / a`` (``a`` a constant per
channel). ONNX Runtime runs that as eight elementwise passes over a [1, C, T] tensor (the
instance norm, Mul, Add, Mul, Sin, Pow, Mul, Add), each a full read and write of the tensor
(``Sin`` on one thread whatever the session's count). The same values in fewer passes, exact up
to float rounding:

- ``z = a * y`` comes straight out of ``InstanceNormalization``, whose scale and bias inputs
  take ``a * (1 + gamma)`` and ``a * beta`` (per-channel vectors, computed at run time);
- Snake is then ``(z + sin(z)^2) / a``: ``Sin``, ``Mul``, ``Add``, and the ``/ a`` either folds
  into the weights of the float ``Conv`` that reads it (``W[:, c, :] / a[c]``, on the weights,
  so once per run and folded at load when they are constant), or stays as one ``Mul``.

So eight passes become four where a float conv follows and five elsewhere: on the CPU recipe
(held-storm, one thread, 2026-12-07) Pow, Mul and Add fell from 0.043 to 0.025 of a second per
second of audio, and the run's time 5%. The ``Mul`` stays in front of an integer GEMM on
purpose: folded into int8 weights, a channel with ``a`` near zero (Kokoro's trained weights hold
``a`` from -0.03 to 2.3) would set the whole column's scale.

The match is Kokoro's graph: gamma and beta per channel (``[1, C, 1]``, batch 1), the norm as
``fuse_instance_norms`` writes it, ``1 / a`` a constant, and nothing else reading in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from parity.core.errors import ParityError
from parity.core.graph import GraphIndex, prune_dead

__all__ = ["SnakeFolds", "fold_snakes", "fold_snakes_in_file"]


@dataclass(frozen=True)
class SnakeFolds:
    """What the rewrite did: chains rewritten, and how many of them a float conv absorbed."""

    chains: int
    into_conv_weights: int


# A float conv that absorbs a chain's ``1 / a``, and the Mul that scales its weight.
_WeightScale = tuple[onnx.NodeProto, onnx.NodeProto]


@dataclass(frozen=True)
class _Chain:
    """One matched AdaIN + Snake chain: the nodes it replaces and the values it reads."""

    norm: onnx.NodeProto  # InstanceNormalization with unit scale and zero bias
    gain: str  # 1 + gamma, [1, C, 1]
    shift: str  # beta, [1, C, 1]
    alpha: np.ndarray  # [C]
    snake: onnx.NodeProto  # the final Add: its output is Snake's
    replaced: tuple[int, ...]  # ids of the nodes between the norm and the final Add


def fold_snakes(model: onnx.ModelProto) -> SnakeFolds:
    """Rewrite every AdaIN + Snake chain of ``model`` in place (run after the instance norms are
    fused into ``InstanceNormalization``); returns what was rewritten."""
    graph = model.graph
    index = GraphIndex(graph)
    outputs = {o.name for o in graph.output}
    chains = [c for c in (_match(n, index, outputs) for n in graph.node if n.op_type == "Sin") if c]
    if not chains:
        return SnakeFolds(0, 0)
    # A norm stays until nothing reads it: ORT's optimiser shares one between the resblocks
    # that read the same input, and each chain gets its own norm with its own affine.
    replaced = {i for chain in chains for i in chain.replaced}
    instead: dict[int, list[onnx.NodeProto]] = {}  # the chain's last node -> its rewrite
    before: dict[int, list[onnx.NodeProto]] = {}  # a conv -> the Mul that scales its weight
    constants: list[onnx.TensorProto] = []
    folded = 0
    for chain in chains:
        built, tensors, weight_scales = _rewrite(chain, index, outputs)
        instead[id(chain.snake)] = built
        for conv, scale in weight_scales:
            before.setdefault(id(conv), []).append(scale)
        constants += tensors
        folded += bool(weight_scales)
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        nodes.extend(before.get(id(node), []))
        if id(node) in instead:
            nodes.extend(instead[id(node)])
        elif id(node) not in replaced:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(constants)
    prune_dead(graph)  # the norms no chain shares any more, with their unit scales and biases
    return SnakeFolds(len(chains), folded)


def fold_snakes_in_file(path: Path) -> SnakeFolds:
    """``fold_snakes`` on the model at ``path``, rewritten in place; a model with no chain is an
    error, since a recipe that asks for the fold expects one."""
    model = onnx.load(str(path))
    folds = fold_snakes(model)
    if folds.chains == 0:
        raise ParityError(
            f"snake fold: no AdaIN + Snake chain in {Path(path).name}; "
            "drop fold_snakes from the recipe"
        )
    onnx.save(model, str(path))
    return folds


def _match(sin: onnx.NodeProto, index: GraphIndex, outputs: set[str]) -> _Chain | None:
    """The chain around ``sin`` when it is Snake after an AdaIN, else None."""

    def only_reader(name: str, op_type: str) -> onnx.NodeProto | None:
        readers = index.consumers(name)
        if name in outputs or len(readers) != 1 or readers[0].op_type != op_type:
            return None
        return readers[0]

    def split(node: onnx.NodeProto, value: str) -> str | None:
        """The other input of a two-input ``node`` one of whose inputs is ``value``."""
        others = [i for i in node.input if i != value]
        return others[0] if len(node.input) == 2 and len(others) == 1 else None

    scaled = index.producer(sin.input[0])
    if scaled is None or scaled.op_type != "Mul":
        return None
    alpha_name = next((i for i in scaled.input if index.array(i) is not None), None)
    alpha_value = index.array(alpha_name) if alpha_name else None
    y = split(scaled, alpha_name) if alpha_name else None
    square = only_reader(sin.output[0], "Pow") or only_reader(sin.output[0], "Mul")
    if alpha_value is None or y is None or square is None:
        return None
    inverse = only_reader(square.output[0], "Mul")
    if inverse is None or not _squares(square, sin.output[0], index):
        return None
    reciprocal = split(inverse, square.output[0])
    snake = only_reader(inverse.output[0], "Add")
    alpha = alpha_value.astype(np.float32).reshape(-1)
    if (
        reciprocal is None
        or snake is None
        or split(snake, inverse.output[0]) != y
        or not _is_reciprocal(index.array(reciprocal), alpha)
        or sorted(id(n) for n in index.consumers(y)) != sorted((id(scaled), id(snake)))
        or y in outputs
    ):
        return None
    affine = _adain(y, index, outputs)
    if affine is None:
        return None
    norm, gain, shift, between = affine
    return _Chain(
        norm, gain, shift, alpha, snake, (*between, id(scaled), id(sin), id(square), id(inverse))
    )


def _squares(node: onnx.NodeProto, value: str, index: GraphIndex) -> bool:
    if node.op_type == "Mul":
        return list(node.input) == [value, value]
    exponent = index.array(node.input[1])
    return exponent is not None and exponent.size == 1 and float(exponent.reshape(())) == 2.0


def _is_reciprocal(value: np.ndarray | None, alpha: np.ndarray) -> bool:
    if value is None or value.size != alpha.size or not np.all(alpha != 0):
        return False
    return bool(np.allclose(value.reshape(-1) * alpha, 1.0, rtol=1e-5, atol=0))


def _adain(
    y: str, index: GraphIndex, outputs: set[str]
) -> tuple[onnx.NodeProto, str, str, tuple[int, ...]] | None:
    """(norm, 1 + gamma, beta, ids of the Mul and Add) when ``y = norm(x) * gain + shift`` with
    a unit-scale, zero-bias instance norm; else None."""
    add = index.producer(y)
    if add is None or add.op_type != "Add":
        return None
    for product_name, shift in (add.input, reversed(add.input)):
        product = index.producer(product_name)
        if product is None or product.op_type != "Mul" or len(index.consumers(product_name)) != 1:
            continue
        for normed, gain in (product.input, reversed(product.input)):
            norm = index.producer(normed)
            if (
                norm is not None
                and norm.op_type == "InstanceNormalization"
                and normed not in outputs
                and product_name not in outputs
                and _unit_affine(norm, index)
            ):
                return norm, gain, shift, (id(product), id(add))
    return None


def _unit_affine(norm: onnx.NodeProto, index: GraphIndex) -> bool:
    """Whether the norm's scale is all ones and its bias all zeros (constants, or the
    ``ConstantOfShape`` values ``fuse_instance_norms`` gives it)."""

    def value(name: str) -> float | None:
        array = index.array(name)
        if array is None:
            made = index.producer(name)
            if made is None or made.op_type != "ConstantOfShape":
                return None
            fill = next((a.t for a in made.attribute if a.name == "value"), None)
            array = numpy_helper.to_array(fill) if fill is not None else np.zeros(1, np.float32)
        flat = np.unique(array.reshape(-1))
        return float(flat[0]) if flat.size == 1 else None

    return value(norm.input[1]) == 1.0 and value(norm.input[2]) == 0.0


def _rewrite(
    chain: _Chain, index: GraphIndex, outputs: set[str]
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], list[_WeightScale]]:
    """The replacement nodes for ``chain``, the constants they read, and (conv, the Mul that
    scales its weight by ``1 / a``) for each float conv that absorbs the division; such convs
    are rewired to read the chain's new output and their scaled weight."""
    base = chain.snake.name or chain.snake.output[0]

    def name(suffix: str) -> str:
        return f"{base}/snake_fold/{suffix}"

    channels = chain.alpha.size
    constants = [
        numpy_helper.from_array(chain.alpha.reshape(1, channels, 1), name("alpha")),
        numpy_helper.from_array(np.array([-1], np.int64), name("flat")),
    ]
    epsilon = next((a.f for a in chain.norm.attribute if a.name == "epsilon"), 1e-5)
    nodes = [
        helper.make_node("Mul", [chain.gain, name("alpha")], [name("gain3")], name=name("gain")),
        helper.make_node("Mul", [chain.shift, name("alpha")], [name("shift3")], name=name("shift")),
        helper.make_node("Reshape", [name("gain3"), name("flat")], [name("scale")], name=name("s")),
        helper.make_node("Reshape", [name("shift3"), name("flat")], [name("bias")], name=name("b")),
        helper.make_node(
            "InstanceNormalization",
            [chain.norm.input[0], name("scale"), name("bias")],
            [name("z")],
            name=name("norm"),
            epsilon=epsilon,
        ),
        helper.make_node("Sin", [name("z")], [name("sin")], name=name("sin")),
        helper.make_node("Mul", [name("sin"), name("sin")], [name("sin2")], name=name("square")),
        helper.make_node("Add", [name("z"), name("sin2")], [name("scaled")], name=name("add")),
    ]
    inverse = (1.0 / chain.alpha).astype(np.float32).reshape(1, channels, 1)
    constants.append(numpy_helper.from_array(inverse, name("inverse")))
    out = chain.snake.output[0]
    readers = index.consumers(out)
    if out in outputs or not readers or not all(_float_conv(r, out) for r in readers):
        nodes.append(
            helper.make_node("Mul", [name("scaled"), name("inverse")], [out], name=name("out"))
        )
        return nodes, constants, []
    scales = []
    for reader in readers:
        weight = f"{reader.name or reader.output[0]}/snake_fold/weight"
        scales.append(
            (
                reader,
                helper.make_node("Mul", [reader.input[1], name("inverse")], [weight], name=weight),
            )
        )
        reader.input[0], reader.input[1] = name("scaled"), weight
    return nodes, constants, scales


def _float_conv(node: onnx.NodeProto, data: str) -> bool:
    """Whether ``node`` is an ungrouped float conv reading ``data`` as its input only, so its
    weight ``[O, C, K]`` can take a factor per input channel."""
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    return (
        node.op_type == "Conv"
        and group == 1
        and list(node.input).count(data) == 1
        and node.input[0] == data
    )
