"""The loop's pieces without Ray: the promotion gate, fresh draws, the state file (the loop end to end,
killed and resumed, is in tests/orchestrator/cli/test_loop.py)."""

from __future__ import annotations

import json
import math

import pytest

from circuits import CktLoopError
from orchestrator.design.loop import LoopConfig, LoopState, draw_round, gate

SHIPPED = {"joint_acc": 0.56, "gain_mae_db": 3.0, "ugbw_mae_dec": 0.12, "pm_mae_deg": 36.8, "fom_mae": 10.6}
PARENT = {"ugbw_mae_dec": 0.05, "pm_mae_deg": 14.0, "fom_mae": 12.0}


def metrics(held: dict, **dataset: float) -> dict:
    return {"heldout": held, "parent_heldout": PARENT, "dataset_test": {**SHIPPED, **dataset}}


def test_the_gate_promotes_a_model_better_on_the_new_rows_that_forgets_nothing():
    better = {"ugbw_mae_dec": 0.03, "pm_mae_deg": 10.0, "fom_mae": 7.0}
    decision = gate(metrics(better, joint_acc=0.552, pm_mae_deg=37.1), SHIPPED, points=1.0)
    assert decision["promoted"] and decision["why_not"] == []
    assert decision["fresh_mae_ratio"] == pytest.approx((0.6 + 10 / 14 + 7 / 12) / 3)


@pytest.mark.parametrize(
    ("held", "dataset", "why"),
    [
        ({"ugbw_mae_dec": 0.05, "pm_mae_deg": 14.0, "fom_mae": 12.0}, {}, "not better on the new held-out rows"),
        ({"ugbw_mae_dec": 0.03}, {}, "not better"),  # a figure missing is no evidence
        ({"ugbw_mae_dec": 0.03, "pm_mae_deg": 10.0, "fom_mae": 7.0}, {"joint_acc": 0.545}, "joint-class accuracy"),
        ({"ugbw_mae_dec": 0.03, "pm_mae_deg": 10.0, "fom_mae": 7.0}, {"gain_mae_db": 3.04}, "gain_mae_db"),
    ],
)
def test_the_gate_keeps_the_current_model_and_says_why(held: dict, dataset: dict, why: str):
    decision = gate(metrics(held, **dataset), SHIPPED, points=1.0)
    assert not decision["promoted"] and any(why in w for w in decision["why_not"]), decision


def rows(n: int) -> list[dict]:
    return [
        {
            "id": f"c{i}",
            "split": "test",
            "status": "ok",
            "gain_db": 40.0 + i % 7,
            "ugbw_hz": 1e7 * (1 + i),
            "pm_deg": 30.0 + i % 50,
            "fom": 1.0,
        }
        for i in range(n)
    ]


def test_window_rounds_never_draw_around_a_circuit_an_earlier_round_used():
    config = LoopConfig(name="l", n=8, rounds=3)
    data, used = rows(20), set()
    for k in (1, 2):
        sources = {t.name.split("-", 2)[2] for t in draw_round(data, config, k, used)}
        assert len(sources) == 8 and not sources & used
        used |= sources
    assert len(draw_round(data, config, 3, used)) == 4  # what is left
    with pytest.raises(CktLoopError, match="round 4: no window targets left"):
        draw_round(data, config, 4, {f"c{i}" for i in range(20)})


def test_a_loop_folder_refuses_other_settings(tmp_path):
    start = {"version": "v0", "checkpoint": "/m.pt", "finetuned": False}
    LoopState(tmp_path, LoopConfig(name="l", n=5), start)
    assert json.loads((tmp_path / "state.json").read_text())["current"] == start
    LoopState(tmp_path, LoopConfig(name="l", n=5), start)  # the same: resumes
    with pytest.raises(CktLoopError, match="holds a loop with other settings"):
        LoopState(tmp_path, LoopConfig(name="l", n=6), start)


@pytest.mark.parametrize(("kw", "message"), [({"draw": "hard"}, "unknown draw"), ({"rounds": 0}, "rounds")])
def test_bad_loop_configs_are_named(kw: dict, message: str):
    with pytest.raises(CktLoopError, match=message):
        LoopConfig(name="l", **kw)


def test_no_figure_is_nan_safe():
    assert math.isnan(gate(metrics({}), SHIPPED, 1.0)["fresh_mae_ratio"])


def test_simulations_to_the_first_met_circuit_are_read_from_the_search_history():
    from orchestrator.design.outcomes import first_met

    assert first_met({"history": [[20, None], [40, None], [60, 3.5], [80, 4.0]]}) == 60
    assert math.isinf(first_met({"history": [[20, None], [40, None]]})) and math.isinf(first_met(None))
    # recorded per circuit since it was stored: the count up to and including the first met circuit
    assert first_met({"history": [[20, None], [40, 2.0]], "first_met": 23}) == 23
    assert math.isinf(first_met({"history": [[20, None]], "first_met": None}))


def test_a_round_s_promotion_is_recorded_in_the_store_once(tmp_path):
    from orchestrator.design.loop import record_promotion
    from storage import Store
    from storage.testing import SAME_ROW, duplicate_rows

    config = LoopConfig(name="l", n=5)
    done = {
        "round": 2,
        "models": {"surrogate": "v0"},
        "gate": {"promoted": True, "fresh_mae_ratio": 0.8, "why_not": []},
        "heldout": {"ugbw_mae_dec": 0.04, "fom_spearman": math.nan},
        "promoted": "v1",
    }
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as store:
        store.register_model("surrogate", "v1", tmp_path / "v1.pt", {}, {}, parent_version="v0")
        record_promotion(store, config, {**done, "promoted": None, "round": 1})  # kept: nothing recorded
        assert store.promotions() == []
        for _ in range(2):  # a resumed loop records the finished round again
            record_promotion(store, config, done)
        (p,) = store.promotions()
        assert (p.version, p.promoted_by, p.round, p.gate["parent"]) == ("v1", "loop l", 2, "v0")  # type: ignore[index]
        assert p.gate["heldout"] == {"ugbw_mae_dec": 0.04, "fom_spearman": None}  # type: ignore[index]
        assert store.promoted("surrogate") == p
        assert duplicate_rows(store.engine) == dict.fromkeys(SAME_ROW, 0)


def test_a_loop_over_a_campaign_file_runs_its_targets_every_round(tmp_path):
    spec = tmp_path / "fixed.yaml"
    spec.write_text("name: fixed\nbudget: 30\ntargets:\n  - {name: a, specs: {gain_db: {min: 40}}}\n")
    config = LoopConfig(name="fixed", draw="file", n=1, rounds=3, budget=30, file=str(spec))
    for k in (1, 2):
        (target,) = draw_round(rows(4), config, k, set())
        assert target.name == "a"
    assert config.to_dict()["file"] == str(spec)
    assert "file" not in LoopConfig(name="l").to_dict()  # a drawn loop's state reads as before file loops
    with pytest.raises(CktLoopError, match="a campaign file goes with draw 'file'"):
        LoopConfig(name="l", draw="file")
