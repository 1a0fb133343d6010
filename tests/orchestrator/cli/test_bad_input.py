"""Bad command lines across every command: exit status 2, one short line naming the problem, the store untouched.

Each case runs ``main`` in this process with ``$CKTLOOP_DB`` pointing at a small SQLite store, so the commands
that take ``--db`` and are not given one read that store. The store's row counts are compared before and after,
and none of these cases may start Ray.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

from circuits import generate
from orchestrator.cli.app import main
from simulator.mna import MnaBackend
from storage import Store

REPO = Path(__file__).resolve().parents[3]
DEMO = str(REPO / "orchestrator" / "campaigns" / "demo.yaml")
SHIPPED_GENERATOR = str(REPO / "generator" / "checkpoints" / "cktgen-cpu.pt")
CPU_SURROGATE = str(REPO / "surrogate" / "configs" / "cpu.yaml")
CPU_GENERATOR = str(REPO / "generator" / "configs" / "cpu.yaml")
UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/x"
NO_RAY = "127.0.0.1:1"  # nothing listens there: joining a Ray cluster must fail at once, before the store is touched

# (command line, words the error line must hold); {tmp} is a folder holding the files below.
CASES = [
    # top level
    ([], ["required: COMMAND"]),
    (["frobnicate"], ["invalid choice: 'frobnicate'"]),
    # dataset build
    (["dataset", "build", "--n", "0"], ["argument --n", "positive integer", "0"]),
    (["dataset", "build", "--n", "ten"], ["argument --n", "'ten'"]),
    (["dataset", "build", "--n", "10", "--timeout", "0"], ["argument --timeout", "> 0"]),
    (["dataset", "build", "--n", "10", "--timeout", "nan"], ["argument --timeout", "'nan'"]),
    (["dataset", "build", "--n", "10", "--workers", "-2"], ["argument --workers", "-2"]),
    (["dataset", "build", "--n", "10", "--batch-size", "0"], ["argument --batch-size"]),
    (["dataset", "build", "--n", "10", "--seed", "-1"], ["argument --seed", "integer >= 0", "-1"]),
    (
        ["dataset", "build", "--n", "10", "--preset", "ocb101", "--sizings-per-topology", "1"],
        ["--sizings-per-topology", ">= 2", "got 1"],
    ),
    (["dataset", "build", "--n", "10", "--preset", "ocb999"], ["argument --preset", "invalid choice"]),
    (["dataset", "build", "--n", "10", "--db", UNREACHABLE], ["cannot open database", "127.0.0.1:1"]),
    (["dataset", "build", "--n", "10", "--address", "head-node"], ["argument --address", "HOST:PORT", "head-node"]),
    (["dataset", "build", "--n", "10", "--address", NO_RAY], ["cannot join the Ray cluster", NO_RAY, "refused"]),
    (
        ["dataset", "build", "--n", "10", "--preset", "ocb101", "--address", f"ray://{NO_RAY}"],
        ["cannot join the Ray cluster", f"ray://{NO_RAY}"],
    ),
    (["dataset", "build", "--n", "10", "--db", "just words"], ["argument --db", "not a database URL"]),
    (["dataset", "build", "--n", "10", "--db", "mysql://u@h/d"], ["argument --db", "unsupported", "mysql"]),
    # dataset export, stats, list
    (["dataset", "export", "--out", "{tmp}/a-file/d.jsonl"], ["argument --out", "a-file is not a directory"]),
    (["dataset", "export", "--name", "nosuch", "--out", "-"], ["no dataset named 'nosuch'"]),
    (["dataset", "stats", "--ocb", "{tmp}/missing.csv"], ["argument --ocb", "missing.csv: no such file"]),
    (["dataset", "stats", "--plot", "{tmp}"], ["argument --plot", "is a directory"]),
    (["dataset", "stats", "--ocb", "{tmp}/random.pt"], ["random.pt", "cannot read the OCB labels"]),
    (["dataset", "stats", "--ocb", "{tmp}/a-file"], ["a-file", "not an OCB label file"]),
    (["dataset", "list", "--db", UNREACHABLE], ["cannot open database"]),
    (["dataset", "list", "--db", "sqlite:///{tmp}/no/such/dir/s.db"], ["cannot open database", "does not exist"]),
    # simulate, netlist
    (["simulate", "{tmp}/missing.json"], ["argument file", "missing.json: no such file"]),
    (["simulate", "{tmp}/truncated.json"], ["truncated.json", "malformed JSON"]),
    (["netlist", "{tmp}/random.pt"], ["random.pt", "cannot read"]),
    (["netlist", "{tmp}"], ["argument file", "not a file"]),
    # train, tune
    (["train", "surrogate", "--config", "{tmp}/missing.yaml"], ["argument --config", "no such file"]),
    (["train", "surrogate", "--config", "{tmp}/truncated.yaml", "--data", "{tmp}/rows.jsonl"], ["truncated.yaml"]),
    (["train", "generator", "--config", "{tmp}/random.pt", "--data", "{tmp}/rows.jsonl"], ["random.pt"]),
    (["train", "mystery", "--config", "{tmp}/truncated.yaml"], ["argument model", "invalid choice"]),
    (
        ["train", "surrogate", "--config", "{tmp}/truncated.yaml", "--out", "{tmp}/a-file/run"],
        ["argument --out", "a-file is not a directory"],
    ),
    (["tune", "surrogate", "--config", "{tmp}/truncated.yaml", "--data", "{tmp}/rows.jsonl"], ["truncated.yaml"]),
    (["tune", "generator", "--config", "{tmp}/truncated.yaml", "--cpus-per-trial", "0"], ["--cpus-per-trial"]),
    (["tune", "surrogate", "--config", CPU_SURROGATE, "--data", "{tmp}/rows.jsonl"], ["rows.jsonl:1", "malformed"]),
    (["tune", "surrogate", "--config", CPU_SURROGATE, "--data", "{tmp}/empty.yaml"], ["empty.yaml", "no rows"]),
    (["tune", "generator", "--config", "{tmp}/truncated.yaml", "--trials", "-1"], ["argument --trials", "-1"]),
    (
        ["tune", "surrogate", "--config", CPU_SURROGATE, "--data", "{tmp}/train-only.jsonl", "--address", NO_RAY],
        ["cannot join the Ray cluster", NO_RAY],
    ),
    # nothing to train on: the data file named, no empty --out (or default runs/<model>) left behind
    (
        ["train", "surrogate", "--config", CPU_SURROGATE, "--data", "{tmp}/empty.yaml", "--out", "{tmp}/new/run"],
        ["empty.yaml", "no usable training rows"],
    ),
    (["train", "generator", "--config", CPU_GENERATOR, "--data", "{tmp}/empty.yaml"], ["empty.yaml", "no usable"]),
    # evaluate
    (
        ["evaluate", "surrogate", "--checkpoint", "{tmp}/random.pt", "--data", "{tmp}/rows.jsonl"],
        ["random.pt", "checkpoint"],
    ),
    (["evaluate", "cond-gen", "--rounds", "0"], ["argument --rounds", "0"]),
    (["evaluate", "prior", "--temperature", "-1"], ["argument --temperature", ">= 0", "-1"]),
    (["evaluate", "cond-gen", "--sampling", "bank", "--bank-noise", "-1"], ["argument --bank-noise", "-1"]),
    (["evaluate", "recon", "--plot", "{tmp}/p.png"], ["--plot", "evaluate recon has none"]),
    (["evaluate", "recon", "--dataset", "nosuch"], ["no dataset named 'nosuch'"]),
    (["evaluate", "surrogate", "--data", "{tmp}/missing.jsonl"], ["argument --data", "no such file"]),
    (["evaluate", "surrogate", "--split", "validation"], ["argument --split", "invalid choice"]),
    (["evaluate", "surrogate", "--data", "{tmp}/train-only.jsonl"], ["train-only.jsonl", "no usable test rows"]),
    (["evaluate", "recon", "--data", "{tmp}/train-only.jsonl"], ["train-only.jsonl", "no usable test rows"]),
    (
        ["evaluate", "cond-gen", "--no-sim", "--data", "{tmp}/train-only.jsonl"],
        ["train-only.jsonl", "no usable test rows"],
    ),
    # ship, bank
    (["ship", "{tmp}/random.pt", "--out", "{tmp}/shipped.pt"], ["random.pt", "checkpoint"]),
    (["ship", SHIPPED_GENERATOR, "--out", "{tmp}/s.pt", "--metrics", "{tmp}/truncated.json"], ["truncated.json"]),
    (["ship", SHIPPED_GENERATOR, "--out", "{tmp}/a-file/s.pt"], ["argument --out", "a-file is not a directory"]),
    (["bank", "{tmp}/random.pt", "--data", "{tmp}/rows.jsonl"], ["random.pt", "checkpoint"]),
    # design
    (["design", "--target", "gain_db>=60", "--budget", "0"], ["argument --budget", "at least 1", "0"]),
    (["design", "--target", "gain_db>=sixty"], ["gain_db>=sixty"]),
    (["design", "--target", "slew_rate>=1"], ["slew_rate", "unknown spec"]),
    (["design", "--target", "gain_db>=60", "--generator", "{tmp}/random.pt"], ["random.pt", "generator checkpoint"]),
    (["design", "--target", "gain_db>=60", "--policy", "greedy-ish"], ["argument --policy", "invalid choice"]),
    (["design", "--target", "gain_db>=60", "--models", "v1,,v2"], ["argument --models", "'v1,,v2'"]),
    (["design", "--target", "gain_db>=60", "--models", "no-such-version"], ["'no-such-version' is registered"]),
    # campaign run, export, report, draw, list
    (["campaign", "run", DEMO, "--budget", "-1"], ["argument --budget", "-1"]),
    (["campaign", "run", DEMO, "--workers", "0"], ["argument --workers", "0"]),
    (["campaign", "run", DEMO, "--reuse", "-1"], ["argument --reuse", "-1"]),
    (["campaign", "run", DEMO, "--refine-near", "2"], ["argument --refine-near", "from 0 to 1", "2"]),
    (["campaign", "run", DEMO, "--reuse-dataset", "nope"], ["reuse dataset 'nope' is not in the store"]),
    (["campaign", "run", DEMO, "--searches-per-worker", "1.5"], ["argument --searches-per-worker", "1.5"]),
    (["campaign", "run", DEMO, "--call-timeout", "0"], ["argument --call-timeout", "> 0", "0"]),
    (["campaign", "run", DEMO, "--target-timeout", "-5"], ["argument --target-timeout", "-5"]),
    (["design", "--target", "gain_db>=60", "--simulator-cpus", "nan"], ["argument --simulator-cpus", "nan"]),
    (["campaign", "run", DEMO, "--address", "ray://head:port"], ["argument --address", "ray://head:port"]),
    (["campaign", "run", DEMO, "--random", "--address", NO_RAY], ["cannot join the Ray cluster", NO_RAY]),
    (["design", "--target", "gain_db>=60", "--random", "--address", NO_RAY], ["cannot join the Ray cluster", NO_RAY]),
    (["campaign", "run", "{tmp}/truncated.yaml"], ["truncated.yaml", "malformed YAML"]),
    (["campaign", "run", "{tmp}/random.pt"], ["random.pt"]),
    (["campaign", "run", "{tmp}/missing.yaml"], ["argument file", "no such file"]),
    (["campaign", "run", DEMO, "--random", "--db", UNREACHABLE], ["cannot open database"]),
    (["campaign", "run", DEMO, "--random", "--reference", "nosuch"], ["no dataset named 'nosuch'"]),
    (["campaign", "run", DEMO, "--models", "shipped,v1"], ["argument --models", "stand alone"]),
    (["campaign", "run", DEMO, "--models", "v7"], ["--models: no generator or surrogate version 'v7'"]),
    (["campaign", "run", DEMO, "--random", "--models", "promoted"], ["a --random search loads no models"]),
    (["campaign", "run", "{tmp}/negative-budget.yaml", "--random"], ["negative-budget.yaml", "budget", "-1"]),
    (["campaign", "run", "{tmp}/empty.yaml", "--random"], ["empty.yaml"]),
    (["campaign", "export", "nosuch", "--out", "-"], ["no campaign named 'nosuch'"]),
    (["campaign", "report", "nosuch", "--out", "{tmp}/report"], ["no campaign named 'nosuch'"]),
    (["campaign", "report", "demo", "--out", "{tmp}/a-file"], ["argument --out", "is not a directory"]),
    (["campaign", "draw", "paper", "--dataset", "nosuch", "--out", "{tmp}/t.yaml"], ["no dataset named 'nosuch'"]),
    (["campaign", "draw", "hard", "--dataset", "d", "--n", "0", "--out", "{tmp}/t.yaml"], ["argument --n"]),
    (["campaign", "draw", "paper", "--dataset", "d", "--seed", "-3", "--out", "{tmp}/t.yaml"], ["argument --seed"]),
    (["campaign", "list", "--db", UNREACHABLE], ["cannot open database"]),
    # finetune
    (["finetune", "surrogate", "--holdout", "1"], ["argument --holdout", "between 0 and 1", "1"]),
    (["finetune", "surrogate", "--members", "0"], ["argument --members", "0"]),
    (["finetune", "surrogate", "--campaign", "nosuch"], ["no campaign named 'nosuch'"]),
    (["finetune", "surrogate", "--base", "{tmp}/missing.pt"], ["argument --base", "missing.pt: no such file"]),
    # loop
    (["loop", "--n", "0"], ["argument --n", "positive integer"]),
    (["loop", "--draw", "hard"], ["argument --draw", "invalid choice: 'hard'"]),
    (["loop", "--gate-points", "0"], ["argument --gate-points", "> 0"]),
    (["loop", "--random"], ["--random", "a random search has none"]),
    (["loop", "--surrogate", "{tmp}/random.pt"], ["random.pt"]),
    (["loop", "--dataset", "nosuch", "--out", "{tmp}/loop"], ["nosuch"]),
    (["loop", "--models", "nosuch"], ["--models", "no generator or surrogate version 'nosuch'"]),
    (["loop", DEMO, "--draw", "paper"], ["--draw paper", "runs the file's targets"]),
    (["loop", "{tmp}/truncated.yaml"], ["truncated.yaml", "malformed YAML"]),
    (["loop", "{tmp}/missing.yaml"], ["argument FILE|report", "missing.yaml: no such file"]),
    (["loop", "--loop", "x"], ["--loop names the loop of 'cktloop loop report'"]),
    (["loop", "report"], ["loop report: --out DIR", "is required"]),
    (["loop", "report", "--out", "{tmp}/r", "--loop", "{tmp}/nosuch"], ["loop report: no loop state at", "nosuch"]),
    # models promote, rollback, promoted
    (["models"], ["required: COMMAND"]),
    (["models", "promote"], ["required: VERSION"]),
    (["models", "promote", "nosuch"], ["models promote", "no generator or surrogate version 'nosuch'", "lost"]),
    (["models", "promote", "lost"], ["surrogate version 'lost'", "lost.pt, which is missing", "not promoted"]),
    (["models", "rollback", "vae"], ["argument kind", "invalid choice: 'vae'"]),
    (["models", "rollback", "surrogate"], ["no surrogate version is promoted", "nothing to roll back"]),
    (["models", "promoted", "--db", UNREACHABLE], ["cannot open database", "127.0.0.1:1"]),
    # serve
    (["serve", "--port", "0"], ["argument --port", "'0'"]),
    (["serve", "--config", "{tmp}/truncated.yaml"], ["truncated.yaml", "malformed YAML"]),
    (["serve", "--address", NO_RAY], ["cannot join the Ray cluster", NO_RAY]),
    (["serve", "--models", "v7"], ["--models: no generator or surrogate version 'v7'"]),
]


FILES = {
    "a-file": b"a file, not a folder\n",
    "truncated.json": b'{"nodes": [{"type": 0, "index"',
    "truncated.yaml": b"name: x\ntargets:\n  - {name: t, specs: {gain_db: {min: 6",
    "random.pt": bytes(range(255, -1, -1)) * 8,
    "rows.jsonl": b'{"id": "x", "circuit": {"nodes": [}\n',
    "negative-budget.yaml": b"name: x\nbudget: -1\ntargets:\n  - {name: t, specs: {gain_db: {min: 60}}}\n",
    "empty.yaml": b"",
}


def train_only_rows() -> bytes:
    """A well-formed export whose rows are all training rows: nothing held out to evaluate on."""
    circuits = [s.circuit for s in generate(4, seed=0)]
    rows = [
        {"id": c.key, "split": "train", "circuit": c.to_dict(), **p.to_dict()}
        for c, p in zip(circuits, MnaBackend().simulate(circuits))
    ]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("bad-input")
    for name, content in {**FILES, "train-only.jsonl": train_only_rows()}.items():
        (tmp / name).write_bytes(content)
    return tmp


@pytest.fixture(scope="module")
def store_url(files) -> str:
    url = f"sqlite:///{files / 'store.db'}"
    with Store.open(url) as store:
        store.ensure_dataset("d", seed=0, n=1, config={})
        store.register_model("surrogate", "lost", files / "lost.pt", {}, {})  # its checkpoint was never written
    return url


def row_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}


def ray_running() -> bool:
    return "ray" in sys.modules and sys.modules["ray"].is_initialized()


def test_there_are_many_cases_across_every_command():
    from orchestrator.cli.app import build_parser

    assert len(CASES) >= 30
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    covered = {argv[0] for argv, _ in CASES if argv}
    assert set(commands) <= covered


@pytest.mark.parametrize(("argv", "needles"), CASES, ids=[" ".join(a)[:60] or "(nothing)" for a, _ in CASES])
def test_bad_input_is_one_line_and_exit_2(argv, needles, files, store_url, capsys, monkeypatch):
    monkeypatch.setenv("CKTLOOP_DB", store_url)
    monkeypatch.chdir(files)
    argv = [a.replace("{tmp}", str(files)) for a in argv]
    ray_before = ray_running()
    before = row_counts(files / "store.db")

    code = main(argv)

    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cktloop: error: ") and len(lines[0]) <= 400, lines[0]
    assert "Traceback" not in err
    for needle in needles:
        assert needle.replace("{tmp}", str(files)) in lines[0], (needle, lines[0])
    assert row_counts(files / "store.db") == before
    assert ray_running() == ray_before
    made = {p.name for p in files.iterdir() if not p.name.startswith("store.db")}
    assert made == {*FILES, "train-only.jsonl"}, "a failed command left files behind"
