"""ngspice and the numpy MNA backend against closed forms and against each other."""

import numpy as np
import pytest

from circuits import Circuit, Node, SimStatus, generate
from simulator.measure import measure, sweep_frequencies
from simulator.mna import MnaBackend
from simulator.netlist import Element
from simulator.ngspice import NgspiceBackend

F = sweep_frequencies()
S = 2j * np.pi * F
G_LOAD, C_LOAD = 1e-6, 50e-15


def two_stage(gm1: int, gm2: int, miller_c: int | None = None) -> Circuit:
    nodes = [Node(0, 0), Node(1, 1), Node(6, 2, gm=gm1), Node(6, 3, gm=gm2)]
    edges = [(0, 2), (2, 3), (3, 1)]
    if miller_c is not None:
        nodes.append(Node(3, 6, c=miller_c))
        edges += [(2, 4), (4, 1)]
    return Circuit(tuple(nodes), tuple(edges))


def miller_h(gm1: float, gm2: float, cc: float) -> np.ndarray:
    """Nodal equations of two inverting gm stages with loads G∥C and a Miller capacitor cc."""
    y = G_LOAD + S * C_LOAD
    return gm1 * (gm2 - S * cc) / ((y + S * cc) ** 2 + S * cc * (gm2 - S * cc))


@pytest.fixture(scope="module", params=["ngspice", "mna"])
def backend(request):
    if request.param == "ngspice":
        request.getfixturevalue("ngspice_available")
        return NgspiceBackend(circuits_per_deck=7)
    return MnaBackend()


def test_two_cascaded_stages_closed_form(backend):
    (r,) = backend.simulate([two_stage(10, 20)])  # gm 1 mS and 2 mS into 1 MΩ ∥ 50 fF each
    a, fp = 1000.0 * 2000.0, 1 / (2 * np.pi * 1e6 * C_LOAD)  # gm·R per stage, one pole per load
    fu = fp * np.sqrt(a - 1)
    assert r.status is SimStatus.OK
    assert r.gain_db == pytest.approx(20 * np.log10(a), abs=1e-6)
    assert r.ugbw_hz == pytest.approx(fu, rel=1e-3)
    assert r.pm_deg == pytest.approx(180 - 2 * np.degrees(np.arctan(fu / fp)), abs=0.02)


def test_miller_amplifier_matches_its_nodal_solution(backend):
    (r,) = backend.simulate([two_stage(10, 50, miller_c=20)])
    expected = measure(F, miller_h(1e-3, 5e-3, 200e-15))
    assert r.gain_db == pytest.approx(expected.gain_db, abs=1e-6)
    assert r.ugbw_hz == pytest.approx(expected.ugbw_hz, rel=1e-6)
    assert r.pm_deg == pytest.approx(expected.pm_deg, abs=1e-4)


def test_textbook_three_pole_loop_built_from_elements(backend):
    # Three stages of gain 10 with poles at 1 kHz, 100 kHz, 100 MHz: DC gain 1000.
    parts, net = [], "inp"
    for k, pole in enumerate((1e3, 1e5, 1e8)):
        out = "out" if k == 2 else f"n{k}"
        r = 1e5
        parts += [
            Element("G", f"G{k}", out, "0", -10 / r, net, "0"),
            Element("R", f"R{k}", out, "0", r),
            Element("C", f"C{k}", out, "0", 1 / (2 * np.pi * pole * r)),
        ]
        net = out
    (r,) = backend.simulate_elements([parts])
    assert r.gain_db == pytest.approx(60.0, abs=1e-4)  # read at 1 Hz, a decade below the first pole
    assert r.ugbw_hz == pytest.approx(308.42e3, rel=5e-4)
    assert r.pm_deg == pytest.approx(17.97, abs=0.01)


def test_batches_give_the_same_results_as_single_runs(backend):
    circuits = [s.circuit for s in generate(30, 11)]
    together = backend.simulate(circuits)
    alone = [backend.simulate([c])[0] for c in circuits[:10]]
    for a, b in zip(together, alone):
        assert a.status == b.status
        if a.ok:
            assert a.gain_db == pytest.approx(b.gain_db, abs=1e-9)
            assert a.ugbw_hz == pytest.approx(b.ugbw_hz, rel=1e-9)


@pytest.mark.ngspice
def test_ngspice_and_mna_agree_on_random_family_members():
    circuits = [s.circuit for s in generate(200, 5)]
    ours, theirs = NgspiceBackend().simulate(circuits), MnaBackend().simulate(circuits)
    for a, b in zip(ours, theirs):
        assert a.status == b.status
        if a.ok:
            assert a.gain_db == pytest.approx(b.gain_db, abs=1e-6)
            assert a.ugbw_hz == pytest.approx(b.ugbw_hz, rel=1e-5)
            assert a.pm_deg == pytest.approx(b.pm_deg, abs=1e-3)


@pytest.mark.ngspice
def test_a_failing_circuit_is_isolated_and_the_rest_of_the_deck_goes_on():
    good = Element("R", "R1", "inp", "out", 1e3)
    load = Element("R", "R2", "out", "0", 1e3)
    floating = Element("C", "C9", "x9", "0", 1e-12)  # x9 has no DC path: ngspice cannot solve the operating point
    bad = Element("C", "C8", "out", "x9", 1e-12)
    blocks = [[good, load], [good, load, bad, floating], [good, load]]
    results = NgspiceBackend(circuits_per_deck=3).simulate_elements(blocks)
    assert [r.status for r in results] == [SimStatus.NO_CROSSING, SimStatus.SIM_ERROR, SimStatus.NO_CROSSING]
    assert results[1].error


@pytest.mark.ngspice
def test_ngspice_runs_one_thread_per_process():
    """Its idle OpenMP thread would otherwise spin and starve a model in the same process."""
    backend = NgspiceBackend()
    assert backend._ensure().exec_command("echo $num_threads").strip() == "1"
