"""The campaign report, from records built out of real circuits measured with the MNA backend."""

import re

import pytest
from matplotlib.figure import Figure

from circuits import Circuit, generate, subgraph_type
from circuits.targets import Target
from orchestrator.reporting.bode import bode
from orchestrator.reporting.drawing import draw_circuit, si
from orchestrator.reporting.report import summarise, write_report
from simulator.mna import MnaBackend
from simulator.netlist import deck

TARGETS = {
    "t01": {"gain_db": {"min": 60.0, "max": None}, "pm_deg": {"min": 45.0, "max": None}},
    "t02": {"ugbw_hz": {"min": 1e9, "max": None}, "pm_deg": {"min": 60.0, "max": 120.0}},
    "<script>": {"gain_db": {"min": 100.0, "max": None}},
    "never": {"gain_db": {"min": 1000.0, "max": None}},
}


def run_records(seed: int, n: int, campaign: str) -> list[dict]:
    """What a campaign export would hold if each target had simply tried the first ``n`` circuits of ``seed``."""
    circuits = [s.circuit for s in generate(n, seed=seed)]
    results = [p.to_dict() for p in MnaBackend().simulate(circuits)]
    records = []
    for name, bounds in TARGETS.items():
        target = Target.from_mapping(
            name, {f: {k: v for k, v in b.items() if v is not None} for f, b in bounds.items()}
        )
        best, history = None, []
        for k, (circuit, result) in enumerate(zip(circuits, results), start=1):
            if target.met_by(result) and (best is None or result["fom"] > best[1]["fom"]):
                best = (circuit, result)
            if k % 20 == 0:
                history.append([k, None if best is None else best[1]["fom"]])
        winner = None
        if best is not None:
            measured = {s: best[1][s] for s in ("gain_db", "ugbw_hz", "pm_deg", "fom")}
            winner = {
                "circuit": best[0].to_dict(),
                "netlist": deck(best[0]),
                "measured": measured,
                "predicted": {s: v * 1.05 for s, v in measured.items()} if name == "t01" else None,
                "source": "generator" if name != "t02" else "refine",
                "spec_class": [1, 3, 2] if name == "t01" else None,
            }
        records.append(
            {
                "campaign": campaign,
                "name": name,
                "bounds": bounds,
                "met": best is not None,
                "class_mode": "inside" if best is not None else "none",
                "n_simulations": n,
                "winner": winner,
                "refinement": {"fom_before": best[1]["fom"] - 0.5, "fom_after": best[1]["fom"]}
                if name == "t02" and best
                else None,
                "dataset_best_fom": best[1]["fom"] - 0.2 if best and name != "never" else None,
                "history": history if name != "never" else [],
            }
        )
    return records


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    records = run_records(seed=0, n=120, campaign="demo")
    baseline = run_records(seed=1, n=120, campaign="demo-random")
    out = tmp_path_factory.mktemp("report")
    facts = {"wall_time_s": 3725.0, "total_simulations": 480, "machine": "2 cores"}
    path = write_report(records, out, baseline=baseline, facts=facts)
    return path, records, baseline, path.read_text()


def test_report_writes_the_page_and_its_figures(report):
    path, records, baseline, page = report
    assert path.name == "index.html"
    for name in ("met.png", "history.png", "refinement.png"):
        assert (path.parent / name).stat().st_size > 0
        assert f'<img src="{name}"' in page
    for src in re.findall(r'<img src="([^"]+)"', page):
        assert (path.parent / src).is_file()
    for r in records:
        assert f">{r['name'].replace('<', '&lt;').replace('>', '&gt;')}<" in page
    s, b = summarise(records), summarise(baseline)
    assert s.met == 3 and records[-1]["winner"] is None  # "never" is unmet
    assert f"<td>campaign</td><td>{s.targets}</td><td>{s.met}</td><td>{s.met_share:.1%}</td>" in page
    assert f"<td>baseline</td><td>{b.targets}</td><td>{b.met}</td>" in page
    assert "1 h 02 min" in page  # wall time from the facts
    assert page.count("<details>") == s.met  # one netlist per winner


def test_report_has_a_bode_plot_and_a_drawing_per_winner(report):
    path, records, _, page = report
    winners = [k for k, r in enumerate(records) if r["winner"]]
    assert len(re.findall(r'<img src="bode-\d+\.png"', page)) == len(winners)
    assert len(re.findall(r'<img src="topology-\d+\.png"', page)) == len(winners)
    for k in winners:
        assert (path.parent / f"bode-{k:04d}.png").is_file()
        assert (path.parent / f"topology-{k:04d}.png").is_file()
    assert "Figures are shown for the first" not in page


def test_report_escapes_text(report):
    page = report[3]
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_every_text_a_user_wrote_comes_out_escaped(tmp_path):
    attack = "<script>alert(1)</script>"
    (record,) = [r for r in run_records(seed=0, n=40, campaign=attack) if r["name"] == "t01"]
    assert record["winner"] is not None
    record |= {"name": attack, "class_mode": attack}
    record["winner"] |= {"source": attack, "netlist": f"* {attack}\n.end\n"}
    page = write_report([record], tmp_path, facts={attack: attack, "note": '"quoted" & <b>bold</b>'}).read_text()
    assert "<script" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 7  # title, heading, fact, name twice, mode, source...
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "&amp;" in page
    assert 'alt="Bode plot of &lt;script&gt;alert(1)&lt;/script&gt;"' in page


def test_bode_markers_are_the_measured_specs(report):
    records = report[1]
    for r in records:
        if not r["winner"]:
            continue
        b = bode(Circuit.from_dict(r["winner"]["circuit"]))
        measured = r["winner"]["measured"]
        assert b.ugbw_hz == pytest.approx(measured["ugbw_hz"], rel=0.01)
        assert b.gain_db == pytest.approx(measured["gain_db"], abs=0.01)
        assert b.pm_deg == pytest.approx(measured["pm_deg"], abs=0.1)
        # the UGBW marker lies on the plotted magnitude's 0 dB crossing
        k = int((b.freq_hz < b.ugbw_hz).sum())
        assert b.mag_db[k - 1] >= 0.0 > b.mag_db[k]


def test_figures_are_capped_and_the_page_says_so(tmp_path):
    records = run_records(seed=0, n=40, campaign="small")
    winners = sum(r["winner"] is not None for r in records)
    assert winners >= 2
    page = write_report(records, tmp_path, max_figures=1).read_text()
    assert len(re.findall(r'<img src="bode-\d+\.png"', page)) == 1
    assert f"Figures are shown for the first 1 of {winners} targets with a winner" in page
    assert "baseline" not in page


def test_report_handles_no_winners_and_no_histories(tmp_path):
    record = {"campaign": "c", "name": "lonely", "bounds": {"gain_db": {"min": 1e3, "max": None}}, "met": False}
    record |= {"class_mode": "none", "n_simulations": 0, "winner": None, "refinement": None}
    record |= {"dataset_best_fom": None, "history": []}
    page = write_report([record], tmp_path, title="nothing met").read_text()
    assert "<h1>nothing met</h1>" in page
    assert "No run recorded a history" in page and "No target has a winner" in page
    assert (tmp_path / "met.png").is_file()
    empty = write_report([], tmp_path / "empty").read_text()
    assert "<td>campaign</td><td>0</td><td>0</td><td>—</td>" in empty


def circuit_with(stages: int, sides: int) -> Circuit:
    return next(
        s.circuit
        for s in generate(500, seed=3)
        if s.circuit.n_stages == stages and len(s.circuit.side_nodes()) == sides
    )


@pytest.mark.parametrize("stages", [2, 3])
def test_drawing_shows_spine_and_side_nodes(stages):
    circuit = circuit_with(stages, 3)
    fig = draw_circuit(circuit)
    assert isinstance(fig, Figure)
    text = "\n".join(t.get_text() for t in fig.axes[0].texts)
    assert f"stage {stages}" in text and "In" in text and "Out" in text
    for i in circuit.side_nodes():
        assert subgraph_type(circuit.nodes[i].type).name in text
    fig.canvas.draw()  # renders without error


def test_si_units():
    assert si(3.5e-13, "F") == "350 fF"
    assert si(1e9, "Hz") == "1 GHz"
    assert si(4e5, "Ω") == "400 kΩ"
    assert si(1e-3, "S") == "1 mS"
