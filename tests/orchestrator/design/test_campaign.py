"""Campaigns end to end on the shared Ray session with ngspice: run, resume, export, report, design."""

from __future__ import annotations

import json

import pytest

from circuits import Circuit
from orchestrator.cli.app import main
from orchestrator.design.campaign_file import parse_campaign
from simulator.mna import MnaBackend
from storage import Store

pytestmark = [pytest.mark.ray, pytest.mark.ngspice, pytest.mark.slow]

CAMPAIGN = """
name: smoke
budget: 60
targets:
  - name: easy
    specs: {gain_db: {min: 40}, ugbw_hz: {min: 1.0e8}, pm_deg: {min: 45, max: 180}}
  - name: gain-only
    specs: {gain_db: {min: 60}}
  - name: impossible
    specs: {gain_db: {min: 500}}
"""


@pytest.fixture
def campaign_file(tmp_path):
    path = tmp_path / "smoke.yaml"
    path.write_text(CAMPAIGN)
    return path


def _rows(db: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(db)
    with engine.connect() as conn:
        counts = {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in ("candidates", "simulations")}
    engine.dispose()
    return counts


def test_a_random_campaign_runs_resumes_exports_and_reports(ray_session, campaign_file, tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    args = ["campaign", "run", str(campaign_file), "--random", "--db", db, "--no-progress"]
    assert main(args) == 0
    assert "2 of 3 targets met" in capsys.readouterr().out
    before = _rows(db)
    with Store.open(db) as store:
        wall = store.campaign("smoke").wall_s
    assert wall > 0  # the run's time is on record
    assert main(args) == 0  # everything done: nothing re-run, nothing added
    assert _rows(db) == before
    with Store.open(db) as store:
        assert store.campaign("smoke").wall_s == wall

    out = tmp_path / "exports" / "smoke.jsonl"  # a missing folder is created
    assert main(["campaign", "export", "smoke", "--out", str(out), "--db", db]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["name"] for r in records] == ["easy", "gain-only", "impossible"]
    targets = {t.name: t for t in parse_campaign(__import__("yaml").safe_load(CAMPAIGN)).targets}
    for r in records:
        assert r["n_simulations"] <= 60
        winner = r["winner"]
        assert winner["netlist"].startswith("*") and "\n.end" in winner["netlist"]
        circuit = Circuit.from_dict(winner["circuit"])
        (again,) = MnaBackend().simulate([circuit])  # an independent solver agrees with the stored ngspice result
        assert again.gain_db == pytest.approx(winner["measured"]["gain_db"], abs=0.01)
        assert again.ugbw_hz == pytest.approx(winner["measured"]["ugbw_hz"], rel=0.005)
        assert r["met"] == targets[r["name"]].met_by(again.to_dict())

    report = tmp_path / "report"
    assert main(["campaign", "report", "smoke", "--out", str(report), "--db", db]) == 0
    html = (report / "index.html").read_text()
    assert "easy" in html and "impossible" in html


def test_design_prints_one_json_object(ray_session, tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'd.db'}"
    args = ["design", "--target", "gain_db>=40", "--target", "pm_deg>=45", "--budget", "40", "--random"]
    assert main([*args, "--json", "--db", db]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["met"] is True
    assert {"circuit", "netlist", "measured", "predicted"} <= set(out)
    assert out["models"] == "none (random search)"
    assert out["measured"]["gain_db"] >= 40 and out["measured"]["pm_deg"] >= 45


def test_a_bad_campaign_file_is_refused_before_any_work(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntargets:\n  - name: t\n    specs: {gain: {min: 1}}\n")
    db = tmp_path / "never.db"
    assert main(["campaign", "run", str(bad), "--random", "--db", f"sqlite:///{db}"]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "'t'" in err and "'gain'" in err
    assert not db.exists()
