from __future__ import annotations

import pytest

from circuits.specs import spec_classes
from circuits.target_sets import hard_targets, meet_rates, paper_targets, threshold_grid, threshold_target, to_campaign
from circuits.targets import Bound, Target

CKT = spec_classes("cktloop")


def row(gain: float, ugbw: float, pm: float, status: str = "ok") -> dict:
    return {"status": status, "gain_db": gain, "ugbw_hz": ugbw, "pm_deg": pm}


def test_a_threshold_target_is_the_class_lower_edges():
    t = threshold_target("t", CKT, (2, 3, 1))  # gain [40, 60), UGBW [1e8, 3e8), PM [0, 30)
    assert dict(t.bounds) == {"gain_db": Bound(40.0, None), "ugbw_hz": Bound(1e8, None), "pm_deg": Bound(0.0, None)}
    lowest = threshold_target("low", CKT, (0, 4, 0))  # open lower edges are left out
    assert [f for f, _ in lowest.bounds] == ["ugbw_hz"]
    with pytest.raises(ValueError, match="pm_ocb_deg"):
        threshold_target("ocb", spec_classes("ocb"), (1, 1, 1))


def test_paper_targets_are_feasible_and_half_are_outer_triples():
    rows = [row(45, 2e8, 10), row(130, 6e9, 50), row(170, 1.5e10, 80), row(210, 3e10, 95)]
    present = {CKT.classify(r) for r in rows}
    targets = paper_targets(CKT, present, 20, seed=3)
    assert len(targets) == 20
    assert sum(t.name.startswith("class") for t in targets) == 4  # every class; outer triples fill the rest
    assert len({t.name for t in targets}) == 20
    for t in targets:  # the class or a dominating class occurs, so some row meets it
        assert any(t.met_by(r) for r in rows), t.describe()
    assert paper_targets(CKT, present, 20, seed=3) == targets


def test_meet_rates_count_only_ok_rows():
    rows = [row(50, 1e9, 60), row(70, 1e9, 60), row(90, 1e7, 60), row(99, 1e10, 60, status="no_crossing")]
    t = Target.from_expressions("t", ["gain_db>=60", "ugbw_hz>=1e8"])
    window = Target("w", (("pm_deg", Bound(45, 90)),))
    assert meet_rates([t, window], rows) == [0.25, 0.75]


def test_hard_targets_are_rare_but_witnessed():
    common = [row(50, 1e8, 50)] * 990
    rare = [row(230, 3e10, 80)] * 6 + [row(230, 3e10, 120)] * 4
    picked = hard_targets(common + rare, n=500, max_rate=0.01, min_witnesses=5)
    assert picked
    for t, rate in picked:
        assert 0.005 <= rate < 0.01
        assert t.met_by(row(230, 3e10, 80))
    assert not hard_targets(common + rare, n=500, max_rate=0.01, min_witnesses=7)  # 6 witnesses is too few
    assert len(threshold_grid()) == 350


def test_to_campaign_round_trips_through_the_campaign_parser():
    from orchestrator.design.campaign_file import parse_campaign

    targets = [threshold_target("a", CKT, (3, 5, 4)), Target("b", (("pm_deg", Bound(45, 90)),))]
    parsed = parse_campaign(to_campaign("set", targets, budget=300))
    assert parsed.budget == 300 and list(parsed.targets) == targets
