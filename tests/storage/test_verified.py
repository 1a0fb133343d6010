"""Verified campaign candidates read back as training rows: each measured circuit once, filtered by
campaign, status and candidate id."""

from __future__ import annotations

import pytest

from circuits import Circuit, Performance, SimStatus
from storage import CandidateRecord, Store, StoreError
from storage.testing import samples


def distinct_circuits(n: int) -> list[Circuit]:
    out: list[Circuit] = []
    for s in samples(3 * n, seed=11):
        if s.circuit not in out:
            out.append(s.circuit)
    return out[:n]


def test_verified_rows_are_measured_circuits_once_in_proposal_order(store: Store) -> None:
    a, b, c, d = distinct_circuits(4)
    one = store.ensure_targets(
        store.ensure_campaign("one", {}), [{"name": "t", "bounds": {"gain_db": {"min": 60.0, "max": None}}}]
    )["t"]
    two = store.ensure_targets(
        store.ensure_campaign("two", {}), [{"name": "u", "bounds": {"gain_db": {"min": 40.0, "max": None}}}]
    )["u"]
    store.add_candidates(one, [CandidateRecord(a, "generator"), CandidateRecord(b, "generator")])
    store.add_candidates(one, [CandidateRecord(c, "refine")])
    store.add_candidates(two, [CandidateRecord(a, "generator"), CandidateRecord(d, "generator")])
    ok = Performance(SimStatus.OK, gain_db=62.0, ugbw_hz=2.5e8, pm_deg=71.0)
    store.add_simulations(
        "ngspice",
        "43",
        [(a.key, ok, 0.1), (b.key, Performance.failed(SimStatus.SIM_ERROR, "x"), None), (c.key, ok, 0.1)],
    )  # d is never simulated

    rows = store.verified_rows()
    assert [r["id"] for r in rows] == [a.key, c.key]  # b failed, d unmeasured, a once
    assert rows[0]["campaign"] == "one" and rows[0]["status"] == "ok" and rows[0]["gain_db"] == 62.0
    assert [r["source"] for r in rows] == ["generator", "refine"]
    assert Circuit.from_dict(rows[1]["circuit"]) == c.canonical()
    assert [r["id"] for r in store.verified_rows(["two"])] == [a.key]
    assert [r["id"] for r in store.verified_rows(status=None)] == [a.key, b.key, c.key]
    first_a = rows[0]["candidate_id"]
    assert [r["id"] for r in store.verified_rows(after_candidate=first_a)] == [c.key, a.key]
    assert store.verified_rows(after_candidate=store.last_candidate_id()) == []
    # d measured later (for another campaign, say) joins the rows, unless they stop at an earlier simulation
    upto = store.last_simulation_id()
    store.add_simulations("ngspice", "43", [(d.key, ok, 0.1)])
    assert [r["id"] for r in store.verified_rows()] == [a.key, c.key, d.key]
    assert [r["id"] for r in store.verified_rows(upto_simulation=upto)] == [a.key, c.key]
    assert rows[0]["simulation_id"] <= upto < store.last_simulation_id()
    with pytest.raises(StoreError, match="no campaign named 'three'"):
        store.verified_rows(["one", "three"])


def test_an_empty_store_has_no_verified_rows(store: Store) -> None:
    assert store.verified_rows() == [] and store.last_candidate_id() == 0 == store.last_simulation_id()
