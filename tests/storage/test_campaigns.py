"""Design campaigns in the store, on both backends: idempotent writes a killed run can repeat, lineage,
measured specs joined from the simulations table, verdicts, and errors that name the bad input."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from sqlalchemy import func, select

from circuits import Circuit, Performance, SimStatus
from circuits.targets import Target
from storage import CandidateRecord, Store, StoreError
from storage.models import campaign_targets, campaigns, candidates, circuits, refinements, topologies
from storage.testing import samples

CONFIG = {"name": "demo", "budget": 50, "targets": [{"name": "fast", "specs": {"gain_db": {"min": 60}}}]}
FAST = {"name": "fast", "bounds": {"gain_db": {"min": 60.0, "max": None}}}
STABLE = {"name": "stable", "bounds": {"pm_deg": {"min": 45.0, "max": 90.0}}}


def table_counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (campaigns, campaign_targets, candidates, refinements, circuits, topologies)
        }


def distinct_circuits(n: int) -> list[Circuit]:
    out: list[Circuit] = []
    for s in samples(3 * n, seed=5):
        if s.circuit not in out:
            out.append(s.circuit)
    assert len(out) >= n
    return out[:n]


@pytest.fixture
def target_ids(store: Store) -> dict[str, int]:
    cid = store.ensure_campaign("demo", CONFIG)
    return store.ensure_targets(cid, [FAST, STABLE])


def test_campaign_and_targets_are_created_once(store: Store) -> None:
    cid = store.ensure_campaign("demo", CONFIG)
    ids = store.ensure_targets(cid, [FAST, STABLE])
    # A re-run: the same calls, by name this time, and with a Target for the first one.
    assert store.ensure_campaign("demo", dict(reversed(CONFIG.items()))) == cid
    fast = Target.from_mapping("fast", {"gain_db": {"min": 60}})
    assert store.ensure_targets("demo", [fast, STABLE]) == ids
    assert store.ensure_targets(cid, [FAST]) == {"fast": ids["fast"]}
    counts = table_counts(store)
    assert (counts["campaigns"], counts["campaign_targets"]) == (1, 2)

    camp = store.campaign("demo")
    assert camp == store.campaign(cid) == store.campaigns()[0]
    assert (camp.name, camp.config, camp.targets, camp.done, camp.met) == ("demo", CONFIG, 2, 0, 0)
    listed = store.campaign_targets("demo")
    assert [t.name for t in listed] == ["fast", "stable"]
    assert [t.position for t in listed] == [0, 1]
    assert listed[0].bounds == FAST["bounds"]
    assert listed[1].status == "pending"
    assert (listed[1].met, listed[1].n_simulations, listed[1].summary, listed[1].finished_at) == (
        None,
        None,
        None,
        None,
    )
    assert store.target(ids["stable"]) == listed[1]


def test_campaign_time_adds_up_over_runs(store: Store) -> None:
    cid = store.ensure_campaign("demo", CONFIG)
    assert store.campaign(cid).wall_s == 0.0
    store.add_campaign_time(cid, 12.5)
    store.add_campaign_time("demo", 7.25)  # a resumed run adds its own time
    assert store.campaign("demo").wall_s == pytest.approx(19.75)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(StoreError, match="campaign time"):
            store.add_campaign_time(cid, bad)
    with pytest.raises(StoreError, match="nope"):
        store.add_campaign_time("nope", 1.0)
    assert store.campaign(cid).wall_s == pytest.approx(19.75)


def test_a_changed_campaign_file_is_refused_naming_what_changed(store: Store) -> None:
    cid = store.ensure_campaign("demo", CONFIG)
    store.ensure_targets(cid, [FAST, STABLE])
    with pytest.raises(StoreError, match=r"campaign 'demo' already exists .*config budget 50 \(requested 60\)"):
        store.ensure_campaign("demo", {**CONFIG, "budget": 60})
    with pytest.raises(StoreError, match=r"target 'fast'.*bounds"):
        store.ensure_targets(cid, [{**FAST, "bounds": {"gain_db": {"min": 70.0, "max": None}}}])
    with pytest.raises(StoreError, match=r"target 'other'.*position 1 already holds target 'stable'"):
        store.ensure_targets(cid, [FAST, {"name": "other", "bounds": {"fom": {"min": 1.0}}}])
    with pytest.raises(StoreError, match=r"target 'stable'.*position 1, not 0"):
        store.ensure_targets(cid, [STABLE])
    with pytest.raises(StoreError, match=r"target 'fast' appears twice"):
        store.ensure_targets(cid, [FAST, FAST])
    assert table_counts(store)["campaign_targets"] == 2  # nothing added by the refused calls


def test_candidates_re_added_keep_their_ids_and_add_no_rows(store: Store, target_ids: dict[str, int]) -> None:
    tid = target_ids["fast"]
    a, b, c = distinct_circuits(3)
    first = [
        CandidateRecord(a, "generator", (1, 3, 2), {"gain_db": 61.5, "fom": 2.25}, "gen-1", None, 0),
        CandidateRecord(b, "random", round=1),
    ]
    ids = store.add_candidates(tid, first)
    assert len(set(ids)) == 2
    before = table_counts(store)
    # A resumed run proposes them again (with another round: the first row wins), plus one new circuit,
    # and the same circuit from another source is another candidate.
    again = store.add_candidates(tid, [CandidateRecord(c, "random", round=2), *first, CandidateRecord(b, "random")])
    assert again[1:] == [*ids, ids[1]]
    other_source = store.add_candidates(tid, [CandidateRecord(a, "random")])
    assert other_source[0] not in (*ids, again[0])
    after = table_counts(store)
    assert after["candidates"] == before["candidates"] + 2
    assert after["circuits"] == before["circuits"] + 1

    rows = store.candidates(tid)
    assert [r.id for r in rows] == [*ids, again[0], other_source[0]]
    gen = rows[0]
    assert Circuit.from_dict(gen.circuit).key == a.key == gen.key
    assert (gen.source, gen.spec_class, gen.model_version, gen.round) == (
        "generator",
        [1, 3, 2],
        "gen-1",
        0,
    )
    assert gen.predicted == {"gain_db": 61.5, "fom": 2.25}
    assert (rows[1].predicted, rows[1].spec_class, rows[1].round) == (None, None, 1)
    assert store.candidates(target_ids["stable"]) == []  # candidates belong to their target
    assert store.target(tid).candidates == 4
    assert store.add_candidates(tid, []) == []


def test_measured_specs_join_from_the_simulations_table(store: Store, target_ids: dict[str, int]) -> None:
    tid = target_ids["fast"]
    a, b, c = distinct_circuits(3)
    store.add_candidates(tid, [CandidateRecord(x, "generator") for x in (a, b, c)])
    store.add_candidates(target_ids["stable"], [CandidateRecord(a, "seed")])  # a circuit shared by targets
    assert [k for k, _ in store.pending_candidates(tid)] == [a.key, b.key, c.key]

    ok = Performance(SimStatus.OK, gain_db=62.0, ugbw_hz=2.5e8, pm_deg=71.0)
    store.add_simulations(
        "ngspice", "43", [(a.key, ok, 0.2), (b.key, Performance.failed(SimStatus.SIM_ERROR, "x"), None)]
    )
    rows = {r.key: r for r in store.candidates(tid)}
    assert rows[a.key].measured.status == "ok"
    assert (rows[a.key].measured.gain_db, rows[a.key].measured.ugbw_hz, rows[a.key].measured.pm_deg) == (
        62.0,
        2.5e8,
        71.0,
    )
    assert ok.fom is not None and math.isclose(rows[a.key].measured.fom, ok.fom, rel_tol=1e-12)
    assert (rows[b.key].measured.status, rows[b.key].measured.error, rows[b.key].measured.gain_db) == (
        "sim_error",
        "x",
        None,
    )
    assert (rows[c.key].measured.status, rows[c.key].measured.gain_db, rows[c.key].measured.fom) == (None, None, None)
    assert Target.from_mapping("fast", {"gain_db": {"min": 60}}).met_by(rows[a.key].measured.to_dict())
    assert [k for k, circuit in store.pending_candidates(tid)] == [c.key]
    assert store.pending_candidates(tid)[0][1] == c.canonical()
    assert store.candidates(target_ids["stable"])[0].measured.status == "ok"
    assert {r.measured.status for r in store.candidates(tid, simulator="xyce")} == {None}


def test_lineage_and_refinements_round_trip(store: Store, target_ids: dict[str, int]) -> None:
    tid = target_ids["fast"]
    a, b, c = distinct_circuits(3)
    (seed,) = store.add_candidates(tid, [CandidateRecord(a, "generator")])
    gen1 = store.add_candidates(tid, [CandidateRecord(b, "refine", parent_id=seed, round=1)])
    # numpy integers (as an optimiser hands them out) are ids and rounds too.
    gen2 = store.add_candidates(
        tid, [CandidateRecord(c, "refine", tuple(np.array([2, 0, 1])), parent_id=np.int64(gen1[0]), round=np.int64(2))]
    )
    parents = {r.id: r.parent_id for r in store.candidates(np.int64(tid))}
    assert parents == {seed: None, gen1[0]: seed, gen2[0]: gen1[0]}
    assert store.candidates(tid)[2].spec_class == [2, 0, 1]

    args = (tid, seed, gen2[0], 120, 1.5, 2.75, [1.5, 2.0, 2.75])
    rid = store.add_refinement(*args)
    assert store.add_refinement(*args) == rid  # a resumed run recording it again
    (ref,) = store.refinements(tid)
    assert (ref.id, ref.seed_candidate_id, ref.result_candidate_id, ref.n_evaluations) == (
        rid,
        seed,
        gen2[0],
        120,
    )
    assert (ref.fom_before, ref.fom_after, ref.history) == (1.5, 2.75, [1.5, 2.0, 2.75])
    with pytest.raises(StoreError, match=r"refinement of candidate \d+ is already recorded with a different fom_after"):
        store.add_refinement(tid, seed, gen2[0], 120, 1.5, 3.0, [1.5, 2.0, 2.75])
    with pytest.raises(StoreError, match=r"seed candidate \d+ belongs to target id"):
        store.add_refinement(target_ids["stable"], seed, None, 10, None, None, [])
    assert table_counts(store)["refinements"] == 1


def test_finishing_targets_and_campaign_counts(store: Store, target_ids: dict[str, int]) -> None:
    fast, stable = target_ids["fast"], target_ids["stable"]
    (winner,) = store.add_candidates(fast, [CandidateRecord(distinct_circuits(1)[0], "generator")])
    assert [t.name for t in store.unfinished_targets("demo")] == ["fast", "stable"]

    summary = {"arms": {"generator": 3}, "history": [0.5, 1.25], "class_mode": "inside"}
    store.finish_target(fast, True, winner, 37, summary)
    store.finish_target(fast, True, winner, 37, summary)  # the same verdict again: a no-op
    done = store.target(fast)
    assert (done.status, done.met, done.winner_candidate_id, done.n_simulations) == (
        "done",
        True,
        winner,
        37,
    )
    assert done.summary == summary and done.finished_at is not None
    assert [t.name for t in store.unfinished_targets("demo")] == ["stable"]
    assert [t.name for t in store.campaign_targets("demo", status="done")] == ["fast"]
    camp = store.campaign("demo")
    assert (camp.targets, camp.done, camp.met) == (2, 1, 1)

    with pytest.raises(StoreError, match=r"target 'fast' of campaign 'demo' is already finished with a different met"):
        store.finish_target(fast, False, None, 37, summary)
    with pytest.raises(StoreError, match=r"winner candidate \d+ belongs to target id"):
        store.finish_target(stable, True, winner, 5)
    store.finish_target(stable, False, None, 50)
    assert store.unfinished_targets("demo") == []
    camp = store.campaigns()[0]
    assert (camp.targets, camp.done, camp.met) == (2, 2, 1)
    assert store.target(fast) == done  # never reopened


def test_a_failed_target_keeps_its_reason_and_is_retried(store: Store, target_ids: dict[str, int]) -> None:
    fast, stable = target_ids["fast"], target_ids["stable"]
    store.fail_target(fast, "KeyError: 'abc'")
    failed = store.target(fast)
    assert (failed.status, failed.reason, failed.met) == ("failed", "KeyError: 'abc'", None)
    assert failed.finished_at is not None
    store.fail_target(fast, "x" * 5000)  # failing again keeps the newest reason, cut to its column's limit
    assert store.target(fast).reason == "x" * 2000
    assert [t.name for t in store.campaign_targets("demo", status="failed")] == ["fast"]
    assert [t.name for t in store.unfinished_targets("demo")] == ["fast", "stable"]  # a re-run retries it
    camp = store.campaign("demo")
    assert (camp.targets, camp.done, camp.failed, camp.met) == (2, 0, 1, 0)

    store.finish_target(fast, False, None, 12)  # the retry succeeds
    done = store.target(fast)
    assert (done.status, done.reason, done.n_simulations) == ("done", None, 12)
    assert (store.campaign("demo").done, store.campaign("demo").failed) == (1, 0)
    with pytest.raises(StoreError, match="target 'fast' of campaign 'demo' is already finished"):
        store.fail_target(fast, "late")
    with pytest.raises(StoreError, match="a failure reason must be a non-empty string"):
        store.fail_target(stable, " ")
    with pytest.raises(StoreError, match="no campaign target with id 999"):
        store.fail_target(999, "boom")
    assert store.target(fast) == done and store.target(stable).status == "pending"


def test_bad_input_is_named(store: Store, target_ids: dict[str, int]) -> None:
    fast = target_ids["fast"]
    circuit = distinct_circuits(1)[0]
    with pytest.raises(StoreError, match="no campaign named 'nope'"):
        store.campaign("nope")
    with pytest.raises(StoreError, match="no campaign with id 999"):
        store.campaign_targets(999)
    with pytest.raises(StoreError, match="no campaign named 'nope'"):
        store.ensure_targets("nope", [FAST])
    for call in (
        lambda: store.target(999),
        lambda: store.candidates(999),
        lambda: store.add_candidates(999, [CandidateRecord(circuit, "random")]),
        lambda: store.finish_target(999, False, None, 1),
        lambda: store.refinements(999),
        lambda: store.pending_candidates(999),
        lambda: store.add_refinement(999, 1, None, 1, None, None, []),
    ):
        with pytest.raises(StoreError, match="no campaign target with id 999"):
            call()
    with pytest.raises(StoreError, match="unknown target status 'running'"):
        store.campaign_targets("demo", status="running")
    with pytest.raises(StoreError, match=r"campaign name must be a non-empty string"):
        store.ensure_campaign("  ", {})
    with pytest.raises(StoreError, match=r"config of campaign 'x' is not JSON-serialisable"):
        store.ensure_campaign("x", {"f": {1, 2}})
    with pytest.raises(StoreError, match=r"target 'bad': bounds must be a non-empty JSON object"):
        store.ensure_targets("demo", [{"name": "bad", "bounds": {}}])
    bad_records = {
        r"candidate 2: unknown predicted spec\(s\) gain": CandidateRecord(circuit, "random", predicted={"gain": 1.0}),
        r"candidate 2: spec_class must be a non-empty sequence of integers": CandidateRecord(
            circuit, "random", spec_class=(1, "a")
        ),
        r"the source of candidate 2 must be a non-empty string of at most 32": CandidateRecord(circuit, ""),
        r"candidate 2: round must be a non-negative integer, got -1": CandidateRecord(circuit, "random", round=-1),
        r"parent candidate\(s\) 12345 do not exist": CandidateRecord(circuit, "refine", parent_id=12345),
    }
    for message, record in bad_records.items():
        with pytest.raises(StoreError, match=message):
            store.add_candidates(fast, [CandidateRecord(circuit, "random"), record])
    with pytest.raises(StoreError, match="a met target needs its winner candidate"):
        store.finish_target(fast, True, None, 3)
    with pytest.raises(StoreError, match="n_simulations must be a non-negative integer"):
        store.finish_target(fast, False, None, -1)
    assert table_counts(store)["candidates"] == 0  # every refused write left nothing behind
    assert store.target(fast).status == "pending"


def test_concurrent_runners_for_different_targets(db_url: str, store: Store) -> None:
    """Like Ray actors, each with its own store: they share the campaign, many circuits and one target."""
    names = [f"t{w}" for w in range(3)]
    pool = distinct_circuits(12)
    barrier = threading.Barrier(len(names))
    errors: list[BaseException] = []

    def runner(w: int) -> None:
        try:
            with Store.open(db_url) as mine:
                barrier.wait(timeout=60)
                cid = mine.ensure_campaign("shared", {"targets": names})
                ids = mine.ensure_targets(cid, [{"name": n, "bounds": {"fom": {"min": 1.0}}} for n in names])
                own = pool[3 * w : 3 * w + 6]  # overlapping with the next runner's circuits
                got = mine.add_candidates(ids[names[w]], [CandidateRecord(c, "random", round=w) for c in own])
                shared = pool if w % 2 else pool[::-1]  # one target that every runner writes, head-on
                mine.add_candidates(ids["t0"], [CandidateRecord(c, "generator") for c in shared])
                mine.add_simulations("ngspice", "43", [(c.key, Performance(SimStatus.NO_CROSSING), None) for c in own])
                mine.finish_target(ids[names[w]], False, None, len(got), {"runner": w})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(w,)) for w in range(len(names))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    counts = table_counts(store)
    assert (counts["campaigns"], counts["campaign_targets"]) == (1, 3)
    assert counts["candidates"] == 3 * 6 + len(pool)
    assert counts["circuits"] == len(pool)
    assert store.unfinished_targets("shared") == []
    assert [len(store.candidates(t.id)) for t in store.campaign_targets("shared")] == [
        6 + len(pool),
        6,
        6,
    ]
