"""Per-layer sensitivity: which nodes break the audio when quantized or cast, and what to keep.

A sweep applies the transform to one group of weight-bearing nodes at a time and measures
the loss of the result against the untransformed model on a fixed set of requests. Groups
are module scopes (``/decoder/decoder/generator/resblocks.2/``); a group that hurts is split
into its sub-scopes, and so on down to single nodes, so the sweep spends its builds where
the damage is. Every group over the threshold is excluded; the rest are transformed at
once and that combined model is measured. When layers that are harmless alone add up past
the budget, a binary search over the remaining groups (worst first) finds how many more
must go.
"""

from parity.search.sensitivity.baseline import (
    BASELINES,
    LossMove,
    SweepDrift,
    SweepVerdict,
    check_baseline,
    compare_with_baseline,
    judge_sweep,
    load_baseline,
    recheck,
    write_baseline,
)
from parity.search.sensitivity.candidates import mean_log_mel, scope_of, weight_nodes
from parity.search.sensitivity.job import SweepJob
from parity.search.sensitivity.result import (
    TRANSFORMS,
    GroupCheck,
    SweepResult,
    SweepRow,
    Transform,
    check_group,
)
from parity.search.sensitivity.sweeper import Sweeper, SweepSettings, sweep

__all__ = [
    "BASELINES",
    "TRANSFORMS",
    "GroupCheck",
    "LossMove",
    "SweepDrift",
    "SweepJob",
    "SweepResult",
    "SweepRow",
    "SweepSettings",
    "SweepVerdict",
    "Sweeper",
    "Transform",
    "check_baseline",
    "check_group",
    "compare_with_baseline",
    "judge_sweep",
    "load_baseline",
    "mean_log_mel",
    "recheck",
    "scope_of",
    "sweep",
    "weight_nodes",
    "write_baseline",
]
