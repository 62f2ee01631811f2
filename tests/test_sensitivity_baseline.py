"""The stored sensitivity sweeps (fixtures/baselines/) still hold on the trained model."""

from __future__ import annotations

import pytest

from parity.search.sensitivity import BASELINES, check_baseline, write_baseline

pytestmark = pytest.mark.parity


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_parity_sensitivity_baseline_holds(
    name,
    parity_config,
    trained_preprocessed,
    kokoro_trained,
    parity_inputs,
    parity_record,
    parity_runs,
) -> None:
    """Its excluded groups still hurt, the nearest kept ones still do not, and the combined
    model with its exclusion list is within budget (a full run of it, not an estimate)."""
    settings = BASELINES[name]
    path = parity_config.baselines_dir / f"{name}.json"
    requests = settings.requests_from(parity_inputs, kokoro_trained[1])
    if parity_config.regen:
        result = settings.run(trained_preprocessed, requests)
        write_baseline(path, settings, result)
        pytest.fail(f"regenerated {path}: {result.summary()}; review it and commit it")
    measured, drift = check_baseline(
        path,
        settings,
        trained_preprocessed,
        requests,
        full=parity_config.full_sweep,
        runs=parity_runs,
    )
    parity_record.add(
        "sensitivity",
        f"{name} ({measured.builds} builds): {drift.summary()}",
        sweep=measured,
        drift=drift,
    )
    assert drift, drift.summary()
