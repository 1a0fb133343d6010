"""The subgraph table against the OCB reference table (reference §1.1), row by row."""

import re

import pytest

from circuits.subgraphs import (
    FEEDBACK_GM,
    FEEDFORWARD_GM,
    IN,
    N_TYPES,
    OUT,
    PASSIVE,
    SUBGRAPH_TYPES,
    Arrangement,
    subgraph_type,
)

NONE, R, C, SERIES, PARALLEL = (
    Arrangement.NONE,
    Arrangement.R,
    Arrangement.C,
    Arrangement.SERIES_RC,
    Arrangement.PARALLEL,
)

# Reference §1.1, transcribed: index -> (device set, arrangement, gm polarity, feedback).
# Polarity 0 means "no gm"; feedback is only meaningful for gm types.
REFERENCE_TABLE = {
    0: (set(), NONE, 0, False),
    1: (set(), NONE, 0, False),
    2: ({"r"}, R, 0, False),
    3: ({"c"}, C, 0, False),
    4: ({"r", "c"}, SERIES, 0, False),
    5: ({"r", "c"}, PARALLEL, 0, False),
    6: ({"gm"}, NONE, +1, False),
    7: ({"gm"}, NONE, -1, False),
    8: ({"gm"}, NONE, +1, True),
    9: ({"gm"}, NONE, -1, True),
    10: ({"c", "gm"}, PARALLEL, +1, False),
    11: ({"c", "gm"}, PARALLEL, -1, False),
    12: ({"c", "gm"}, PARALLEL, +1, True),
    13: ({"c", "gm"}, PARALLEL, -1, True),
    14: ({"r", "gm"}, PARALLEL, +1, False),
    15: ({"r", "gm"}, PARALLEL, -1, False),
    16: ({"r", "gm"}, PARALLEL, +1, True),
    17: ({"r", "gm"}, PARALLEL, -1, True),
    18: ({"c", "r", "gm"}, PARALLEL, +1, False),
    19: ({"c", "r", "gm"}, PARALLEL, -1, False),
    20: ({"c", "r", "gm"}, PARALLEL, +1, True),
    21: ({"c", "r", "gm"}, PARALLEL, -1, True),
    22: ({"c", "r", "gm"}, SERIES, +1, False),
    23: ({"c", "r", "gm"}, SERIES, -1, False),
    24: ({"c", "r", "gm"}, SERIES, +1, True),
    25: ({"c", "r", "gm"}, SERIES, -1, True),
}


def test_table_has_26_rows_indexed_in_order():
    assert N_TYPES == 26
    assert len(SUBGRAPH_TYPES) == 26
    assert [t.index for t in SUBGRAPH_TYPES] == list(range(26))
    assert (IN, OUT) == (0, 1)


@pytest.mark.parametrize("index", range(26))
def test_row_matches_reference(index):
    devices, arrangement, polarity, feedback = REFERENCE_TABLE[index]
    t = subgraph_type(index)
    assert t is SUBGRAPH_TYPES[index]
    assert set(t.devices) == devices
    assert t.has_r == ("r" in devices)
    assert t.has_c == ("c" in devices)
    assert t.has_gm == ("gm" in devices)
    assert t.gm_sign == polarity
    assert t.feedback == feedback
    assert t.arrangement is arrangement


@pytest.mark.parametrize("index", range(26))
def test_devices_are_listed_in_r_c_gm_order(index):
    devices = subgraph_type(index).devices
    assert list(devices) == [d for d in ("r", "c", "gm") if d in devices]


@pytest.mark.parametrize("index", range(6, 26))
def test_gm_names_carry_polarity_then_direction(index):
    t = subgraph_type(index)
    polarity = "+" if t.gm_sign > 0 else "-"
    direction = "-" if t.feedback else "+"
    assert f"{polarity}gm{direction}" in t.name


def test_terminal_and_passive_flags():
    assert [t.index for t in SUBGRAPH_TYPES if t.is_terminal] == [0, 1]
    assert [t.index for t in SUBGRAPH_TYPES if t.is_passive] == [2, 3, 4, 5]
    assert subgraph_type(0).name == "In"
    assert subgraph_type(1).name == "Out"
    for t in SUBGRAPH_TYPES:
        assert not (t.is_terminal and t.is_passive)
        assert t.is_terminal or t.is_passive or t.has_gm


def test_index_lists():
    assert FEEDFORWARD_GM == (6, 7, 10, 11, 14, 15, 18, 19, 22, 23)
    assert FEEDBACK_GM == (8, 9, 12, 13, 16, 17, 20, 21, 24, 25)
    assert PASSIVE == (2, 3, 4, 5)
    negative = tuple(t.index for t in SUBGRAPH_TYPES if t.gm_sign < 0)
    assert negative == (7, 9, 11, 13, 15, 17, 19, 21, 23, 25)
    # Every type is exactly one of terminal, passive, feed-forward gm, feedback gm.
    assert sorted((IN, OUT, *PASSIVE, *FEEDFORWARD_GM, *FEEDBACK_GM)) == list(range(26))


def test_subg_indi_parameter_sets():
    """The SUBGRAPH_INDI table of reference §1.1: which of (r, c, gm) each type carries."""
    expected = {2: {"r"}, 3: {"c"}, 4: {"r", "c"}, 5: {"r", "c"}}
    expected |= {i: {"gm"} for i in range(6, 10)}
    expected |= {i: {"c", "gm"} for i in range(10, 14)}
    expected |= {i: {"r", "gm"} for i in range(14, 18)}
    expected |= {i: {"r", "c", "gm"} for i in range(18, 26)}
    expected |= {0: set(), 1: set()}
    assert {t.index: set(t.devices) for t in SUBGRAPH_TYPES} == expected


def test_connection_classes():
    """Reference: 2, 3, 6-9 single-device; 4 and 22-25 series; 5 and 10-21 parallel."""
    series = [t.index for t in SUBGRAPH_TYPES if t.arrangement is SERIES]
    parallel = [t.index for t in SUBGRAPH_TYPES if t.arrangement is PARALLEL]
    assert series == [4, 22, 23, 24, 25]
    assert parallel == [5, *range(10, 22)]


@pytest.mark.parametrize("bad", [26, -1, 100, True, False, 2.0, "2", None])
def test_unknown_type_is_rejected_naming_it(bad):
    with pytest.raises(ValueError, match=re.escape(f"unknown node type {bad!r}")):
        subgraph_type(bad)


def test_subgraph_types_are_frozen():
    with pytest.raises(AttributeError):
        SUBGRAPH_TYPES[6].gm_sign = -1  # type: ignore[misc]
