r"""A sensitivity sweep as pytest items, one per first-level group, for pytest-xdist.

    pytest --pyargs parity.search.sweep_items --parity-sweep-model M.onnx \
        --parity-sweep-out DIR -n 2

Each item ranks one group (splitting it where it hurts) and writes its rows to
``DIR/parts/``; when the session ends, the controller merges every part, decides the
exclusions, verifies them with a full run of the combined model and writes
``sensitivity.json`` / ``.csv`` / ``.png`` as ``parity sensitivity`` does. Groups are
independent, so the table is the same with any number of workers or hosts.
"""

from __future__ import annotations

from parity.search.sensitivity import Sweeper, SweepJob


def test_sweep_group(sweep_scope: str, parity_sweeper: Sweeper, parity_sweep_job: SweepJob) -> None:
    """Rank one group and keep its rows for the merge."""
    before = parity_sweeper.bench.builds
    rows = parity_sweeper.rank(sweep_scope, parity_sweep_job.settings.threshold)
    parity_sweep_job.write_part(sweep_scope, rows, parity_sweeper.bench.builds - before)
