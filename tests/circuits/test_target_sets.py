from __future__ import annotations

import pytest

from circuits.specs import spec_classes
from circuits.target_sets import (
    hard_targets,
    meet_rates,
    paper_targets,
    threshold_grid,
    threshold_target,
    to_campaign,
    window_source,
    window_target,
    window_targets,
)
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


def test_a_window_is_two_sided_around_the_measured_specs():
    t = window_target("w", {"status": "ok", "gain_db": 60.0, "ugbw_hz": 1e9, "pm_deg": 70.0})
    bounds = dict(t.bounds)
    assert bounds["gain_db"] == Bound(58.5, 61.5)
    assert bounds["ugbw_hz"].low == pytest.approx(0.92e9) and bounds["ugbw_hz"].high == pytest.approx(1.08e9)
    assert bounds["pm_deg"] == Bound(67.0, 73.0)
    assert t.met_by(row(61.4, 1.07e9, 67.5))
    assert not t.met_by(row(61.6, 1e9, 70))  # gain 0.1 dB outside
    assert not t.met_by(row(60, 1.09e9, 70))  # UGBW 9 % high
    assert not t.met_by(row(60, 1e9, 66.9))  # PM 3.1° low


def test_window_targets_draw_distinct_ok_rows_by_seed():
    rows = [{**row(40 + i, 1e8 * (i + 1), 30 + i), "id": f"c{i}"} for i in range(10)]
    rows.append({**row(200, 1e10, 80, status="no_crossing"), "id": "bad"})
    rows.append({"status": "ok", "gain_db": 50.0, "ugbw_hz": None, "pm_deg": 60.0, "id": "partial"})
    targets = window_targets(rows, 6, seed=4)
    assert len(targets) == 6 and len({t.name for t in targets}) == 6
    assert all(t.name.startswith(f"window-{k}-c") for k, t in enumerate(targets))
    by_id = {r["id"]: r for r in rows}
    for t in targets:  # each window holds the circuit it was drawn around, and no failed or partial row
        assert t.met_by(by_id[t.name.split("-")[-1]])
    assert window_targets(rows, 6, seed=4) == targets
    assert window_targets(rows, 6, seed=5) != targets
    assert len(window_targets(rows, 50, seed=4)) == 10  # one per usable row at most
    assert window_targets([rows[-2]], 3) == []


def test_window_source_prefers_the_held_out_split():
    rows = [
        {**row(60, 1e9, 60), "split": "train", "id": "a"},
        {**row(70, 1e9, 60), "split": "test", "id": "b"},
        {**row(80, 1e9, 60, status="no_crossing"), "split": "test", "id": "c"},
        {**row(90, 1e9, -20), "split": "test", "id": "unstable"},
    ]
    assert [r["id"] for r in window_source(rows)] == ["b"]
    assert [r["id"] for r in window_source(rows, min_pm_deg=-45)] == ["b", "unstable"]
    assert [r["id"] for r in window_source([rows[0]])] == ["a"]  # no held-out split: every ok row
