"""The metrics log keeps the epochs a checkpoint covers; the plot draws every requested series."""

import json

from surrogate.training.metrics import MetricsLog, Panel, _lines, plot_metrics

RECORDS = [
    {"epoch": e, "train": {"total": 1.0 / e, "ckt_x": 2.0}, "test": {"acc": [0.1 * e, 0.2 * e], "mae": e}}
    for e in (1, 2, 3)
]


def test_restart_keeps_covered_epochs_and_drops_cut_lines(tmp_path):
    log = MetricsLog(tmp_path / "m.jsonl")
    assert log.restart(0) == [] and log.path.read_text() == ""
    for r in RECORDS:
        log.append(r)
    with log.path.open("a") as fh:
        fh.write('{"epoch": 4, "tra')
    assert log.restart(2) == RECORDS[:2]
    assert [json.loads(x)["epoch"] for x in log.path.read_text().splitlines()] == [1, 2]
    assert log.restart(0) == [] and log.path.read_text() == ""


def test_panels_expand_wildcards_and_lists(tmp_path):
    lines = dict(_lines(RECORDS, Panel("t", ("train.*", "test.acc", "test.nothing"), exclude=("ckt_",))))
    assert lines == {
        "train total": [1.0, 0.5, 1 / 3],
        "test acc 0": [0.1, 0.2, 0.30000000000000004],
        "test acc 1": [0.2, 0.4, 0.6000000000000001],
    }
    plot_metrics(RECORDS, tmp_path / "m.png", [Panel("a", ("train.*",)), Panel("b", ("test.mae",), "linear")])
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    plot_metrics([], tmp_path / "none.png", [Panel("a", ("train.*",))])
    assert not (tmp_path / "none.png").exists()
