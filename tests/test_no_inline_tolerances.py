"""No test writes a tolerance inline: every bound lives in ``parity.judge.tolerances``, named,
with the measurement it was set from (issue 34).

What counts as an inline tolerance in ``tests/*.py``:

* inside an ``assert``, an ordering comparison (``<``, ``<=``, ``>``, ``>=``) with a
  fractional number written on either side: ``assert err < 1e-5``, ``assert size < 0.6 *
  before``, ``assert err <= 1e-5 * 20 * 4``;
* a number other than 0 handed to a closeness check as its bound: by keyword (``atol``,
  ``rtol``, ``abs``, ``rel``, ``abs_tol``, ``rel_tol``), or by position to
  ``assert_allclose``/``allclose``/``isclose`` (after the two values) and ``approx`` (after
  the expected value);
* either of these through a name the test file binds to such a number (``bound = 1e-3``).

What does not: exact equality to a literal (``assert share == 0.5``, ``== pytest.approx(0.6)``
at its default precision): an identity that holds by construction, which a wrong result
breaks. Ordering against a whole number (``count > 0``, ``ratio < 1.0``, ``size > 300e6``):
counts, identities and sizes, not an amount of error allowed. Names imported from ``parity``
are bound elsewhere, so they pass.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).parent

ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
TOLERANCE_KEYWORDS = frozenset({"atol", "rtol", "abs", "rel", "abs_tol", "rel_tol"})
# How many leading positional arguments of each closeness check are the values compared; the
# positional arguments after them are its bounds: assert_allclose(actual, desired, rtol,
# atol), allclose/isclose(a, b, rtol, atol), approx(expected, rel, abs).
COMPARED_VALUES = {"assert_allclose": 2, "allclose": 2, "isclose": 2, "approx": 1}


_ARITHMETIC = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _number(node: ast.AST) -> float | None:
    """The value of an expression made only of number literals and arithmetic
    (``1e-5``, ``-0.5``, ``8 * 2.0**-24``); None for anything else."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _ARITHMETIC:
        operand = _number(node.operand)
        return None if operand is None else _ARITHMETIC[type(node.op)](operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        left, right = _number(node.left), _number(node.right)
        if left is None or right is None:
            return None
        try:
            return _ARITHMETIC[type(node.op)](left, right)
        except ArithmeticError:
            return None
    return None


def _outside_calls(node: ast.AST) -> Iterator[ast.AST]:
    """``node`` and its parts, but not what it passes to a call: in ``err < 1e-5 * max(1.0,
    peak)`` the bound is 1e-5; in ``loss(x * 0.3) < BOUND`` the 0.3 is an input, not a bound."""
    yield node
    if not isinstance(node, ast.Call):
        for child in ast.iter_child_nodes(node):
            yield from _outside_calls(child)


class _File:
    def __init__(self, path: Path) -> None:
        self.source = path.read_text()
        self.tree = ast.parse(self.source, filename=str(path))
        # ``bound = 1e-3`` anywhere in the file: the name is the number.
        self.bound_names = {
            target.id: value
            for node in ast.walk(self.tree)
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None
            if (value := _number(node.value)) is not None
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Name)
        }

    def numbers_in(self, node: ast.AST) -> Iterator[float]:
        """Every number written in ``node`` (outside its calls), or named by a number bound in
        this file."""
        for part in _outside_calls(node):
            if isinstance(part, ast.Name) and part.id in self.bound_names:
                yield self.bound_names[part.id]
            elif isinstance(part, ast.BinOp | ast.UnaryOp | ast.Constant):
                value = _number(part)
                if value is not None:
                    yield value

    def segment(self, node: ast.AST) -> str:
        """The first line of ``node`` as written."""
        return (ast.get_source_segment(self.source, node) or ast.unparse(node)).splitlines()[0]

    def has_fraction(self, node: ast.AST) -> bool:
        return any(float(value) % 1 != 0 for value in self.numbers_in(node))

    def has_nonzero(self, node: ast.AST) -> bool:
        return any(value != 0 for value in self.numbers_in(node))


def _callee(call: ast.Call) -> str:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return call.func.id if isinstance(call.func, ast.Name) else ""


def inline_tolerances(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, source)`` of each comparison or call in one test file that writes a tolerance
    inline."""
    file = _File(path)
    for node in ast.walk(file.tree):
        if isinstance(node, ast.Assert):
            for compare in ast.walk(node.test):
                if isinstance(compare, ast.Compare) and any(
                    isinstance(op, ORDERING) and (file.has_fraction(a) or file.has_fraction(b))
                    for op, a, b in zip(
                        compare.ops,
                        [compare.left, *compare.comparators[:-1]],
                        compare.comparators,
                        strict=True,
                    )
                ):
                    yield compare.lineno, file.segment(compare)
        elif isinstance(node, ast.Call):
            bounds = [kw.value for kw in node.keywords if kw.arg in TOLERANCE_KEYWORDS]
            if (compared := COMPARED_VALUES.get(_callee(node))) is not None:
                bounds += node.args[compared:]
            if any(file.has_nonzero(bound) for bound in bounds):
                yield node.lineno, file.segment(node)


def _offenders(paths: list[Path]) -> list[str]:
    return [
        f"{path.relative_to(TESTS.parent)}:{line}: {text}"
        for path in paths
        for line, text in inline_tolerances(path)
    ]


def test_no_test_writes_a_tolerance_inline() -> None:
    offenders = _offenders(sorted(TESTS.glob("*.py")))
    assert not offenders, (
        "tolerances written inline; name each in parity/judge/tolerances/ with the "
        "measurement it was set from:\n" + "\n".join(offenders)
    )


def test_the_check_sees_each_kind_of_inline_tolerance(tmp_path: Path) -> None:
    """The checker itself: each form above is found, each allowed form is not."""
    sample = tmp_path / "test_sample.py"
    sample.write_text(
        "BOUND = 1e-3\n"
        "assert err < 1e-5\n"  # 2
        "assert 0 < moved <= 0.1\n"  # 3
        "assert err <= 1e-5 * 20 * 4\n"  # 4
        "assert all(e < BOUND for e in errs)\n"  # 5
        "np.testing.assert_allclose(a, b, rtol=1e-5)\n"  # 6
        "np.testing.assert_allclose(a, b, 1e-5)\n"  # 7
        "assert x == pytest.approx(y, abs=2)\n"  # 8
        "assert x == pytest.approx(y, 0.01)\n"  # 9
        # allowed: exact equality, whole-number bounds, a named bound, a default precision
        "assert share == 0.5\n"
        "assert count > 0 and ratio < 1.0 and size > 300e6\n"
        "assert err < FP32.stage_rms_rel\n"
        "assert x == pytest.approx(0.6)\n"
        "assert loss(signal * 0.3) < LIMIT\n"
        "np.testing.assert_allclose(a, b, atol=0)\n"
    )
    assert [line for line, _ in inline_tolerances(sample)] == [2, 3, 4, 5, 6, 7, 8, 9]
