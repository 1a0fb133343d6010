"""The command line: outputs a person reads, and one-line errors for every kind of bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from circuits import Circuit, Node, generate
from orchestrator.cli.app import main
from orchestrator.datasets.build import build_dataset
from orchestrator.datasets.stats import default_ocb_path
from orchestrator.distributed.simulation_pool import PoolConfig, SimulationPool, ngspice_factory
from simulator.mna import MnaBackend
from storage import Store

GOOD = Circuit(
    (Node(0, 0), Node(1, 1), Node(6, 2, gm=10), Node(7, 3, gm=20), Node(3, 6, c=5)),
    ((0, 2), (2, 3), (3, 1), (2, 4), (4, 1)),
)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cktloop: error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def circuit_file(tmp_path):
    path = tmp_path / "amp.json"
    path.write_text(GOOD.to_json(indent=2))
    return path


def test_netlist_prints_the_deck(capsys, circuit_file):
    code, out, _ = run(capsys, "netlist", str(circuit_file))
    assert code == 0
    assert out.startswith("* cktloop circuit " + GOOD.key)
    assert "G2 n1 0 inp 0 0.001" in out and "C4 n1 out 5e-14" in out and out.rstrip().endswith(".end")


@pytest.mark.ngspice
def test_simulate_prints_specs_as_json(capsys, circuit_file):
    code, out, _ = run(capsys, "simulate", str(circuit_file))
    assert code == 0
    result = json.loads(out)
    (expected,) = MnaBackend().simulate([GOOD])
    assert result["id"] == GOOD.key and result["status"] == "ok"
    assert result["gain_db"] == pytest.approx(expected.gain_db, abs=1e-6)
    assert result["ugbw_hz"] == pytest.approx(expected.ugbw_hz, rel=1e-5)
    assert result["pm_deg"] == pytest.approx(expected.pm_deg, abs=1e-3)
    assert result["fom"] == pytest.approx(expected.fom, rel=1e-5)


def mutate(data: dict, how: str) -> dict:
    if how == "unknown type":
        data["nodes"][2]["type"] = 26
    elif how == "cycle":
        data["edges"].append([3, 2])
    elif how == "off grid":
        data["nodes"][2]["gm"] = 102
    return data


@pytest.mark.parametrize(
    ("how", "needles"),
    [
        ("unknown type", ["node 2", "unknown node type 26"]),
        ("cycle", ["cycle", "3 -> 2"]),
        ("off grid", ["node 2", "gm value 102", "off the 'ocb' grid"]),
    ],
)
@pytest.mark.parametrize("command", ["netlist", "simulate"])
def test_bad_circuits_give_one_line_errors(capsys, tmp_path, how, needles, command):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(mutate(GOOD.canonical().to_dict(), how)))
    code, out, err = run(capsys, command, str(path))
    assert out == ""
    assert_one_line_error(code, err, str(path), *needles)


def test_malformed_json_and_missing_file(capsys, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"nodes": [')
    assert_one_line_error(*run(capsys, "netlist", str(path))[::2], "malformed JSON", "line 1")
    assert_one_line_error(*run(capsys, "simulate", str(tmp_path / "nope.json"))[::2], "nope.json", "no such file")


def test_unreachable_database(capsys):
    code, _, err = run(capsys, "dataset", "stats", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert_one_line_error(code, err, "cannot open database", "127.0.0.1:1")


@pytest.mark.parametrize(
    "command",
    [
        ["dataset", "export", "--out", "x.jsonl"],
        ["evaluate", "cond-gen", "--no-sim"],
        ["bank", "generator/checkpoints/cktgen-cpu.pt"],
    ],
)
def test_empty_store_says_what_to_do(capsys, tmp_path, command):
    code, _, err = run(capsys, *command, "--db", f"sqlite:///{tmp_path / 'e.db'}")
    assert_one_line_error(code, err, "no dataset", "cktloop dataset build")


@pytest.mark.parametrize(
    ("command", "option"),
    [(["dataset", "export", "--out", "x.jsonl"], "--name"), (["evaluate", "recon"], "--dataset")],
)
def test_several_datasets_name_the_option_that_chooses(capsys, tmp_path, command, option):
    from storage.store import Store

    url = f"sqlite:///{tmp_path / 'two.db'}"
    with Store.open(url) as store:
        for name in ("a", "b"):
            store.ensure_dataset(name, seed=0, n=1, config={})
    code, _, err = run(capsys, *command, "--db", url)
    assert_one_line_error(code, err, "several datasets (a, b)", f"choose one with {option}")


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        ([], ["dataset", "simulate", "netlist", "train", "tune", "evaluate", "ship", "bank", "design", "campaign"]),
        ([], ["finetune", "loop", "serve"]),
        (["dataset"], ["build", "export", "stats", "list"]),
        (["dataset", "build"], ["--n", "--preset", "--sizings-per-topology", "--timeout", "--workers", "--db"]),
        (["netlist"], ["file", "standard input"]),
        (["evaluate"], ["--checkpoint", "--rounds", "--bank-noise", "--no-sim", "--data", "--dataset"]),
        (["campaign"], ["run", "export", "report", "draw", "list"]),
        (["campaign", "run"], ["--budget", "--policy", "--generator", "--surrogate", "--random", "--workers"]),
        (["design"], ["--target", "--budget", "--json", "--verify"]),
        (["loop"], ["--draw", "--n", "--rounds", "--gate-points", "--earlier-ratio", "--surrogate", "--out", "--json"]),
        (["loop"], ["FILE|report", "--models", "--loop"]),
        (["campaign", "run"], ["--models", "shipped|promoted|VERSION"]),
        (["serve"], ["--models", "--generator", "--surrogate"]),
    ],
)
def test_help_names_the_commands_and_options(capsys, argv, names):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: cktloop {' '.join(argv)}".rstrip())
    for name in names:
        assert name in text, name


@pytest.mark.parametrize("command", [["campaign", "run"], ["design"], ["loop"]])
def test_help_states_the_reuse_and_refine_near_defaults_the_settings_use(capsys, command):
    from orchestrator.design.campaign import CampaignSettings
    from orchestrator.design.search import SearchConfig

    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"without simulating them again (default {CampaignSettings.reuse}; 0: off)" in text
    assert f"(default {SearchConfig.refine_near:g}; 0: the search phase always takes its share" in text
    assert f"every dataset in the store ({CampaignSettings.reuse_dataset}, default) or none" in text


def installed_cktloop(*argv: str, cwd=None) -> subprocess.CompletedProcess:
    """Run the console script pip installed beside this interpreter, as a user would."""
    script = Path(sys.executable).parent / "cktloop"
    assert script.is_file(), f"{script}: the cktloop console script is not installed (pip install -e .)"
    return subprocess.run([str(script), *argv], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_installed_console_script_prints_help():
    done = installed_cktloop("--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: cktloop")
    assert "campaign" in done.stdout and "dataset" in done.stdout


def test_installed_console_script_netlists_a_circuit_file(circuit_file):
    done = installed_cktloop("netlist", str(circuit_file))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("* cktloop circuit " + GOOD.key) and ".ac dec 100 1 100G" in done.stdout


def test_installed_console_script_refuses_bad_input_in_one_line(tmp_path):
    done = installed_cktloop("dataset", "build", "--n", "10", "--timeout", "0", "--db", f"sqlite:///{tmp_path}/s.db")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "cktloop: error: argument --timeout: expected a number > 0, got 0 (see cktloop dataset build --help)"
    ]
    assert not (tmp_path / "s.db").exists()


@pytest.fixture(scope="module")
def db(ray_session, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'd.db'}"
    config = PoolConfig(num_workers=2, batch_size=50, circuits_per_deck=25)

    def factory(c: PoolConfig) -> SimulationPool:
        return SimulationPool(c, ngspice_factory(c.circuits_per_deck))

    build_dataset(Store.open(url), 120, 9, "small", pool_config=config, pool_factory=factory, progress=False)
    return url


@pytest.mark.ray
@pytest.mark.ngspice
class TestOnABuiltDataset:
    def test_export_has_the_promised_fields_and_round_trips(self, capsys, db, tmp_path):
        out = tmp_path / "new" / "folder" / "d.jsonl"  # missing folders are created
        code, _, _ = run(capsys, "dataset", "export", "--out", str(out), "--db", db)
        assert code == 0
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 120
        for key in ("id", "circuit", "gain_db", "ugbw_hz", "pm_deg", "fom", "status", "split"):
            assert all(key in r for r in rows), key
        stream = [s.circuit for s in generate(120, 9)]
        assert [Circuit.from_dict(r["circuit"]).key for r in rows] == [c.key for c in stream]
        assert [r["id"] for r in rows] == [c.key for c in stream]

    def test_exported_line_netlists_like_its_circuit(self, capsys, db, tmp_path):
        out = tmp_path / "d.jsonl"
        run(capsys, "dataset", "export", "--out", str(out), "--db", db)
        line = tmp_path / "line.json"
        line.write_text(out.read_text().splitlines()[5])
        code, deck, _ = run(capsys, "netlist", str(line))
        assert code == 0 and json.loads(line.read_text())["id"] in deck

    @pytest.mark.skipif(not default_ocb_path().exists(), reason="published OCB labels not beside the repository")
    def test_stats_compares_with_ocb(self, capsys, db, tmp_path):
        code, out, _ = run(capsys, "dataset", "stats", "--db", db, "--plot", str(tmp_path / "s.png"), "--json")
        assert code == 0
        result = json.loads(out)
        assert result["circuits"] == 120 and sum(result["statuses"].values()) == 120
        assert 0 < result["ocb101"]["ugbw_hz"]["ks"] < 1
        assert (tmp_path / "s.png").stat().st_size > 10_000

    def test_conflicting_build_is_refused_and_leaves_the_store_as_it_was(self, capsys, db):
        before = Store.open(db).datasets()
        code, _, err = run(capsys, "dataset", "build", "--n", "10", "--seed", "1", "--name", "small", "--db", db)
        assert_one_line_error(code, err, "small", "seed")
        assert Store.open(db).datasets() == before
