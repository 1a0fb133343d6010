"""Campaigns finish at every budget: a sweep from 1 to 600 simulations per target, each outcome stored.

The small budgets are where refinement gets only a few simulations (at 40, a seed's refinement had
room for a compass polish but not a generation, and its result looked for a seed it never simulated).
MNA stands in for ngspice and an oracle for the surrogate; the store is a fresh SQLite file.
"""

from __future__ import annotations

import pytest

from circuits.specs import spec_classes
from circuits.targets import Target
from orchestrator.design.campaign import save_outcome, target_seed
from orchestrator.design.search import SearchConfig, TargetSearch, family_proposer
from simulator.mna import MnaBackend
from storage import Store

MNA = MnaBackend()
CLASSES = spec_classes("ocb")
KNOWN = [(2, 1, 1), (2, 2, 1), (3, 1, 1), (1, 0, 0)]
TARGETS = [
    Target.from_expressions("easy", ["gain_db>=40", "ugbw_hz>=1e8", "pm_deg>=45"]),
    Target.from_expressions("hard", ["gain_db>=70", "ugbw_hz>=1e9", "pm_deg>=60"]),
    Target.from_expressions("impossible", ["gain_db>=500"]),
]
VERSIONS = {"generator": "test-gen", "surrogate": None, "simulator": "mna", "simulator_version": "0"}


def oracle(circuits):
    """A perfect surrogate: the simulated specs themselves."""
    out = []
    for perf in MNA.simulate(circuits):
        row = perf.to_dict()
        out.append({k: row[k] if row[k] is not None else -1e9 for k in ("gain_db", "ugbw_hz", "pm_deg", "fom")})
    return out


def sweep(store: Store, budgets: list[int], source: str) -> None:
    for budget in budgets:
        name = f"sweep-{source}-{budget}"
        campaign = store.ensure_campaign(name, {"budget": budget})
        ids = store.ensure_targets(campaign, TARGETS)
        for target in TARGETS:
            calls: list[int] = []

            def simulate(circuits, calls=calls):
                calls.append(len(circuits))
                return MNA.simulate(circuits)

            config = SearchConfig(budget=budget, seed=target_seed(0, target.name))
            predict = oracle if source == "generator" else None
            search = TargetSearch(target, CLASSES, KNOWN, family_proposer(), predict, simulate, config, source)
            outcome = search.run()
            assert outcome.n_simulations == sum(calls) <= budget
            save_outcome(store, ids[target.name], outcome, VERSIONS, [])
        rows = store.campaign_targets(campaign)
        assert [r.status for r in rows] == ["done"] * len(TARGETS), name
        assert all(r.n_simulations <= budget for r in rows)
        assert not rows[2].met  # the impossible target


@pytest.mark.parametrize("source", ["generator", "random"])
def test_small_budgets_finish_and_are_stored(tmp_path, source):
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as store:
        sweep(store, [1, 2, 3, 5, 10, 20, 40], source)


@pytest.mark.slow
def test_large_budgets_finish_and_are_stored(tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'l.db'}") as store:
        sweep(store, [100, 600], "generator")
