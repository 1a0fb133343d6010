"""Netlisting: element placement, units and the deck's shape."""

import re

import pytest

from circuits import Circuit, Node
from simulator.netlist import LOAD_FARADS, LOAD_OHMS, deck, elements, net_of, spice_lines


def by_name(circuit: Circuit) -> dict:
    return {e.name: e for e in elements(circuit)}


def test_nets_two_and_three_stages(amp):
    assert net_of(amp()) == {0: "inp", 2: "n1", 3: "out", 1: "out"}
    three = amp(stages=(Node(6, 2, gm=1), Node(7, 3, gm=1), Node(6, 4, gm=1)))
    assert net_of(three) == {0: "inp", 2: "n1", 3: "n2", 4: "out", 1: "out"}


def test_gm_stage_has_signed_vccs_and_fixed_load(amp):
    e = by_name(amp(stages=(Node(6, 2, gm=10), Node(7, 3, gm=20))))
    g1, g2 = e["G2"], e["G3"]
    assert (g1.pos, g1.neg, g1.ctrl_p, g1.ctrl_n) == ("n1", "0", "inp", "0")
    assert g1.value == pytest.approx(1e-3) and g2.value == pytest.approx(-2e-3)
    assert (e["RL2"].pos, e["RL2"].value) == ("n1", LOAD_OHMS)
    assert (e["CL3"].pos, e["CL3"].value) == ("out", LOAD_FARADS)


def test_feedback_gm_senses_the_later_net_and_loads_the_earlier(amp):
    e = by_name(amp((Node(9, 5, gm=5), 2, 1)))  # -gm- from n1 to out
    g = e["G4"]
    assert (g.pos, g.ctrl_p, g.value) == ("n1", "out", pytest.approx(-5e-4))
    assert e["RL4"].pos == "n1"


def test_series_rc_has_a_private_internal_node(amp):
    e = by_name(amp((Node(4, 6, r=3, c=7), 2, 1)))
    assert (e["R4"].pos, e["R4"].neg, e["R4"].value) == ("n1", "x4", pytest.approx(3e5))
    assert (e["C4"].pos, e["C4"].neg, e["C4"].value) == ("x4", "out", pytest.approx(70e-15))


def test_parallel_dressing_of_a_gm_stage(amp):
    e = by_name(amp((Node(18, 5, r=101, c=1, gm=1), 0, 2)))  # C|R|+gm+ from inp to n1
    assert (e["R4"].pos, e["R4"].neg, e["R4"].value) == ("inp", "n1", pytest.approx(10.1e6))
    assert (e["C4"].pos, e["C4"].neg, e["C4"].value) == ("inp", "n1", pytest.approx(10e-15))
    assert (e["G4"].pos, e["G4"].ctrl_p) == ("n1", "inp")


def test_deck_is_self_contained_and_avoids_spice_milli_trap(amp):
    text = deck(amp((Node(2, 6, r=4), 2, 1)))
    lines = text.strip().splitlines()
    assert lines[2] == "Vin inp 0 DC 0 AC 1"
    assert ".ac dec 100 1 100G" in lines and lines[-1] == ".end"
    for line in lines[3:-2]:
        value = line.split()[-1]
        assert re.fullmatch(r"-?[0-9.]+(e-?[0-9]+)?", value), line  # plain numbers: no M (milli) / Meg suffixes
    assert "R4 n1 out 400000" in text


def test_prefix_makes_names_and_nets_unique_but_keeps_ground(amp):
    lines = spice_lines(elements(amp()), "c7_")
    assert lines[0] == "Vc7_in c7_inp 0 DC 0 AC 1"
    assert "Gc7_2 c7_n1 0 c7_inp 0 0.001" in lines
    assert all(" in " not in f" {line} " for line in lines)
