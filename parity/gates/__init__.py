"""The gates the package ships: pytest tests that judge every file of the run (its own
export, a user's routines' output, ``--parity-onnx`` files) by the verdict of its precision.

A project collects them with ``parity_gates = true`` (ini) or ``--parity-gates``; they are
test modules, so pytest rewrites their asserts like any other.
"""
