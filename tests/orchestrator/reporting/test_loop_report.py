"""``cktloop loop report``: per round, the surrogate's fresh errors, targets met, simulations to the first met
circuit and the models in use, as PNG figures and an HTML page; from a loop's state and the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli.app import main
from orchestrator.reporting.loop_report import sims_axis_top, write_loop_report
from storage import Store


def round_record(k: int, promoted: bool = True, done: bool = True, outcome: bool = True) -> dict:
    record: dict = {"round": k, "campaign": f"demo-r{k}", "models": {"surrogate": f"s{k - 1}", "generator": "g0"}}
    if outcome:
        record.update(
            outcome={"targets": 10, "met": 3 + k, "simulations": 999, "median_sims_to_first_met": 100 - 10 * k},
            fresh_ugbw_mae_decades=0.06 / k,
            fresh_pm_mae_deg=14.0 - k,
            fresh_gain_mae_db=1.25,
            fresh_fom_mae=5.0 - k,
            fresh_fom_spearman=0.98,
            fresh_rows=900 + k,
        )
    if done:
        why = [] if promoted else ["dataset joint-class accuracy 1.15 points below the shipped surrogate's"]
        record.update(
            candidate=f"s{k}",
            gate={"promoted": promoted, "fresh_mae_ratio": 0.8125, "why_not": why},
            promoted=f"s{k}" if promoted else None,
            done=True,
        )
    return record


STATE = {
    "config": {"name": "demo<b>", "draw": "window", "n": 10, "rounds": 4, "budget": 100},
    "start": {"version": "s0", "checkpoint": "/m.pt", "finetuned": False},
    "rounds": [round_record(1), round_record(2, promoted=False), round_record(3, done=False)],
}


def test_the_page_and_its_figures_hold_each_round(tmp_path: Path):
    promotions = [{"round": 1, "version": "s1", "created_at": "2026-12-04 12:00:00"}]
    page = write_loop_report(STATE, tmp_path / "r", promotions=promotions).read_text()
    assert {p.name for p in (tmp_path / "r").iterdir()} == {"index.html", "errors.png", "outcomes.png", "models.png"}
    assert "demo&lt;b&gt;" in page and "<b>" not in page  # escaped
    for text in ("promoted (fresh MAE ratio 0.812)", "kept: dataset joint-class accuracy 1.15 points", "0.03", "13"):
        assert text in page, text
    assert "s1 at 2026-12-04 12:00:00" in page and "fine-tune pending" in page
    assert "Rounds not finished yet: 3" in page


def test_the_simulations_axis_fits_the_medians_and_reaches_the_budget_only_for_an_unmet_round():
    assert sims_axis_top([7.0, 6.0, 3.5], 0) == pytest.approx(1.15 * 7.0)  # not the budget of 100
    assert sims_axis_top([7.0], 100) == pytest.approx(115.0)  # an unmet round is marked at the budget
    assert sims_axis_top([], 0) == pytest.approx(1.15)


def test_a_round_whose_campaign_runs_is_reported_from_the_store(tmp_path: Path):
    state = {**STATE, "rounds": [round_record(1), round_record(2, done=False, outcome=False)]}
    live = {2: {"targets": 10, "met": 2, "simulations": 150, "median_sims_to_first_met": None}}
    page = write_loop_report(state, tmp_path, live=live).read_text()
    assert "campaign running" in page and "— (half or more not met)" in page
    empty = write_loop_report({**STATE, "rounds": []}, tmp_path / "empty").read_text()
    assert "No round has a campaign in the store yet" in empty and not (tmp_path / "empty" / "errors.png").exists()


def test_loop_report_reads_the_loop_folder_and_the_store_s_promotions(tmp_path: Path, capsys: pytest.CaptureFixture):
    folder = tmp_path / "loop"
    folder.mkdir()
    (folder / "state.json").write_text(json.dumps(STATE))
    db = f"sqlite:///{tmp_path / 's.db'}"
    with Store.open(db) as store:
        store.register_model("surrogate", "s1", tmp_path / "s1.pt", {}, {})
        store.promote("surrogate", "s1", "loop demo<b>", 1)
        store.promote("surrogate", "s1", "loop other", 1)
    assert main(["loop", "report", "--out", str(tmp_path / "r"), "--loop", str(folder), "--db", db]) == 0
    assert capsys.readouterr().out.strip() == f"report: {tmp_path / 'r' / 'index.html'}"
    page = (tmp_path / "r" / "index.html").read_text()
    assert page.count(" at 20") == 1  # round 1's promotion, by this loop only
    (folder / "state.json").write_text("{not json")
    assert main(["loop", "report", "--out", str(tmp_path / "r"), "--loop", str(folder), "--db", db]) == 2
    assert "is not a loop state file" in capsys.readouterr().err


def test_loop_report_reads_the_store_s_copy_when_the_folder_is_gone(tmp_path: Path, capsys: pytest.CaptureFixture):
    from orchestrator.design.loop import LoopConfig, LoopState

    folder, db = tmp_path / "runs" / "demo", f"sqlite:///{tmp_path / 's.db'}"
    start = {"version": "s0", "checkpoint": "/m.pt", "finetuned": False}
    with Store.open(db) as store:
        state = LoopState(folder, LoopConfig(name="demo", n=10), start, store)
        record = round_record(1)
        state.round(1)
        state.put(1, {**record, "fresh_fom_spearman": float("nan")})  # a figure that could not be measured
        kept = store.loop_state("demo")
    assert kept is not None and kept["rounds"][0]["fresh_fom_spearman"] is None  # strict JSON in the store
    assert kept["rounds"][0]["fresh_fom_mae"] == record["fresh_fom_mae"] and kept["current"] == start
    (folder / "state.json").unlink()  # the folder's state is lost
    out = tmp_path / "r"
    assert main(["loop", "report", "--out", str(out), "--loop", "demo", "--db", db]) == 0
    assert capsys.readouterr().out.strip() == f"report: {out / 'index.html'}"
    page = (out / "index.html").read_text()
    assert "demo" in page and f"{record['fresh_fom_mae']:.4g}" in page
    assert main(["loop", "report", "--out", str(out), "--loop", "other", "--db", db]) == 2
    err = capsys.readouterr().err
    assert "no loop state at" in err and "the store holds no loop named 'other'" in err
