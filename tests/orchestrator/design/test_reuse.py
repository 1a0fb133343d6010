"""Reuse: the store's verified circuits nearest a target, by measurement, one per topology, each with its
measurement; the search simulates those the store says meet first, counted against its budget, and takes
the others as known misses without simulating them."""

from __future__ import annotations

from pathlib import Path

from circuits import Circuit, Performance, SimStatus
from circuits.performance import figure_of_merit
from circuits.specs import spec_classes
from circuits.targets import Target
from orchestrator.design.campaign import save_outcome
from orchestrator.design.reuse import DatasetRows, Library, build_library
from orchestrator.design.search import SearchConfig, StoredCircuit, TargetSearch, family_proposer
from simulator.mna import MnaBackend
from storage import CandidateRecord, Store
from storage.testing import rows as dataset_rows
from storage.testing import samples

WINDOW = Target.from_expressions("w", ["gain_db>=40", "gain_db<=50", "ugbw_hz>=1e6", "ugbw_hz<=2e6"])


def distinct(n: int, seed: int = 3) -> list[Circuit]:
    """``n`` circuits of distinct topologies."""
    out: dict[str, Circuit] = {}
    for s in samples(20 * n, seed=seed):
        out.setdefault(s.circuit.topology_key, s.circuit)
    return list(out.values())[:n]


def row(circuit: Circuit, gain: float, ugbw: float, pm: float = 60.0, status: str = "ok") -> dict:
    return {
        "id": circuit.key,
        "circuit": circuit.to_dict(),
        "status": status,
        "gain_db": gain,
        "ugbw_hz": ugbw,
        "pm_deg": pm,
    }


def test_nearest_puts_met_circuits_first_by_fom_then_the_least_violating() -> None:
    a, b, c, d, e = distinct(5)
    library = Library.from_rows(
        [
            row(a, 60.0, 1.5e6),  # gain 10 dB over: 0.5 decades of voltage gain
            row(b, 45.0, 1.2e6),  # met
            row(c, 50.0, 2e6),  # met, exactly on both upper bounds, and a higher FoM than b
            row(d, 45.0, 2.2e6),  # UGBW 10 % over: 0.04 decades
            row(e, 45.0, 1.5e6, status="sim_error"),  # not measured ok: never reused
        ]
    )
    assert len(library) == 4
    assert figure_of_merit(50.0, 2e6, 60.0) > figure_of_merit(45.0, 1.2e6, 60.0)
    assert [x.circuit.key for x in library.nearest(WINDOW, 10)] == [c.key, b.key, d.key, a.key]
    assert [x.circuit.key for x in library.nearest(WINDOW, 2)] == [c.key, b.key]
    measured = library.nearest(WINDOW, 10)[2].measured  # d's, as stored
    assert (measured.ok, measured.gain_db, measured.ugbw_hz, measured.pm_deg) == (True, 45.0, 2.2e6, 60.0)
    assert library.nearest(WINDOW, 0) == [] and Library.from_rows([]).nearest(WINDOW, 3) == []


def test_nearest_takes_one_circuit_per_topology() -> None:
    sized = [s.circuit for s in samples(400, seed=5)]
    by_topology: dict[str, list[Circuit]] = {}
    for circuit in sized:
        by_topology.setdefault(circuit.topology_key, []).append(circuit)
    twice = next(cs for cs in by_topology.values() if len({c.key for c in cs}) > 1)
    first, second = twice[0], next(c for c in twice if c.key != twice[0].key)
    other = next(cs[0] for cs in by_topology.values() if cs[0].topology_key != first.topology_key)
    library = Library.from_rows([row(first, 45.0, 1.5e6), row(second, 46.0, 1.5e6), row(other, 70.0, 1.5e6)])
    assert [x.circuit.key for x in library.nearest(WINDOW, 3)] == [second.key, other.key]  # second: met, higher FoM


def test_build_library_reads_other_campaigns_and_training_splits_never_a_held_out_circuit(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'r.db'}") as store:
        ok = Performance(SimStatus.OK, gain_db=45.0, ugbw_hz=1.5e6, pm_deg=60.0)
        splits: dict[str, tuple[set[str], set[str]]] = {}  # dataset -> (train keys, test keys)
        for name, seed in (("d", 2), ("e", 4)):
            members = dataset_rows(60, seed=seed)
            store.ensure_dataset(name, seed, len(members), {})
            store.add_dataset_circuits(name, members)
            store.add_simulations("ngspice", "39", [(m.circuit.key, ok, None) for m in members])
            splits[name] = tuple({m.circuit.key for m in members if m.split == s} for s in ("train", "test"))
        held_out = splits["d"][1] | splits["e"][1]
        assert all(splits[n][0] and splits[n][1] for n in splits)  # both splits are there
        mine, theirs = distinct(2, seed=9)
        # a campaign that happened to simulate one of d's held-out circuits
        leaked = next(r.circuit for r in dataset_rows(60, seed=2) if r.split == "test")
        for name, circuits in (("mine", [mine]), ("theirs", [theirs, leaked])):
            bounds = {"gain_db": {"min": 40.0, "max": None}}
            target = store.ensure_targets(store.ensure_campaign(name, {}), [{"name": "t", "bounds": bounds}])["t"]
            store.add_candidates(target, [CandidateRecord(c, "generator") for c in circuits])
            store.add_simulations("ngspice", "39", [(c.key, ok, None) for c in circuits])

        def keys(library: Library) -> set[str]:
            return {Circuit.from_dict(c).key for c in library.circuits}

        assert store.held_out_keys() == held_out
        assert keys(build_library(store, exclude=["mine"], dataset=None)) == {theirs.key}
        assert keys(build_library(store, exclude=["mine"], dataset="d")) == {theirs.key, *splits["d"][0]}
        every = keys(build_library(store))  # the default: every dataset's training split
        assert every == {mine.key, theirs.key, *splits["d"][0], *splits["e"][0]} - held_out
        assert not every & held_out


def test_dataset_rows_are_read_once_and_again_when_the_dataset_changes(tmp_path: Path, monkeypatch) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'r.db'}") as store:
        members = dataset_rows(40, seed=3)
        store.ensure_dataset("d", 3, len(members), {})
        store.add_dataset_circuits("d", members)
        ok = Performance(SimStatus.OK, gain_db=45.0, ugbw_hz=1.5e6, pm_deg=60.0)
        train = [m.circuit.key for m in members if m.split == "train"]
        store.add_simulations("ngspice", "39", [(k, ok, None) for k in train[:10]])
        reads: list[str] = []
        read = store.dataset_rows
        monkeypatch.setattr(store, "dataset_rows", lambda name: reads.append(name) or read(name))
        kept = DatasetRows()
        assert len(build_library(store, datasets=kept)) == 10
        assert len(build_library(store, datasets=kept)) == 10 and reads == ["d"]  # kept: not read again
        store.add_simulations("ngspice", "39", [(k, ok, None) for k in train[10:]])  # the build went on
        assert len(build_library(store, datasets=kept)) == len(train) and reads == ["d", "d"]


def test_the_search_simulates_the_reused_circuits_the_store_says_meet_first_and_never_a_known_miss(
    tmp_path: Path,
) -> None:
    mna = MnaBackend()
    reused = [c for c in distinct(8, seed=4) if mna.simulate([c])[0].ok][:3]
    measured = mna.simulate(reused)
    meets = Performance(SimStatus.OK, gain_db=45.0, ugbw_hz=1.5e6, pm_deg=60.0)  # what the store says of two
    misses = Performance(SimStatus.OK, gain_db=80.0, ugbw_hz=1.5e6, pm_deg=60.0)  # and of the third
    stored = [StoredCircuit(reused[0], meets), StoredCircuit(reused[1], misses), StoredCircuit(reused[2], meets)]
    calls: list[list[str]] = []

    def simulate(circuits):
        calls.append([c.key for c in circuits])
        return mna.simulate(circuits)

    config = SearchConfig(budget=40, seed=1)
    search = TargetSearch(
        WINDOW, spec_classes("ocb"), [], family_proposer(), None, simulate, config, "random", [*stored, stored[0]]
    )
    outcome = search.run()
    assert calls[0] == [reused[0].key, reused[2].key]  # first, each once: ngspice judges them again
    assert all(reused[1].key not in call for call in calls)  # the known miss is never simulated
    store_rows = [p for p in outcome.proposals.values() if p.source == "store"]
    assert [(p.circuit.key, p.known) for p in store_rows] == [(c.key, c is reused[1]) for c in reused]
    assert outcome.proposals[reused[1].key].measured == misses  # taken at the store's measurement
    assert outcome.proposals[reused[0].key].measured == measured[0]  # this search's own simulation
    assert outcome.n_simulations == 40 == sum(len(c) for c in calls)  # simulations count against the budget
    assert {p.circuit.key for p in outcome.simulated()} == {k for call in calls for k in call}
    assert outcome.history[0][0] == 2

    # stored: the known miss is a candidate (refinement may start from it), and no simulation is recorded for it
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as store:
        target = store.ensure_targets(store.ensure_campaign("c", {}), [WINDOW])["w"]
        versions = {"simulator": "mna", "simulator_version": "1"}
        save_outcome(store, target, outcome, versions, [])
        rows = store.verified_rows(["c"], simulator="mna", status=None)
        assert reused[1].key not in {r["id"] for r in rows}
        assert len(rows) == 40
        assert reused[1].key in {c.key for c in store.candidates(target)}


def test_a_near_miss_sends_the_search_to_refinement_at_once_when_told() -> None:
    mna = MnaBackend()
    circuit = next(c for c in distinct(10, seed=4) if mna.simulate([c])[0].ok)
    (measured,) = mna.simulate([circuit])
    assert measured.gain_db is not None
    near = Target.from_expressions("near", [f"gain_db>={measured.gain_db + 0.5}"])  # 0.025 short of it

    def run(refine_near: float):
        config = SearchConfig(budget=60, seed=2, refine_near=refine_near)
        reuse = [StoredCircuit(circuit, measured)]
        search = TargetSearch(
            near, spec_classes("ocb"), [], family_proposer(), None, mna.simulate, config, "random", reuse
        )
        return search.run()

    at_once, searched = run(0.05), run(0.0)
    assert {p.source for p in at_once.proposals.values()} == {"store", "refine"}  # no search round
    assert [r["seed"] for r in at_once.refinements] == [circuit.key]
    assert at_once.n_simulations == searched.n_simulations == 60
    assert at_once.proposals[circuit.key].known  # a known miss: refined without simulating it again
    assert sum(p.source == "random" for p in searched.proposals.values()) >= 20  # the search phase ran
    assert run(0.02).proposals.keys() == searched.proposals.keys()  # 0.025 short is not within 0.02


def test_campaigns_stored_before_reuse_and_refine_near_resume_with_both_off() -> None:
    from orchestrator.design.campaign import CampaignSettings

    def described(reuse: int, **knobs: float) -> dict:
        return CampaignSettings("g", "s", SearchConfig(**knobs), reuse=reuse).describe()

    before = described(0, refine_near=0.0)
    assert "reuse" not in before and "refine_near" not in before["search"]  # as stored before the options
    now = described(CampaignSettings.reuse)
    assert now["reuse"] == {"n": 5, "dataset": "all"} and now["search"]["refine_near"] == 0.1
