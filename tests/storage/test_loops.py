"""Loop states: a closed loop's state kept in the store, whole, replaced on each save, strict JSON."""

from __future__ import annotations

import pytest

from storage import StoreError


def test_a_loop_state_is_kept_whole_and_replaced(store) -> None:
    assert store.loop_state("l") is None
    store.save_loop_state("l", {"config": {"name": "l"}, "rounds": []})
    store.save_loop_state("l", {"config": {"name": "l"}, "rounds": [{"round": 1, "met": 97}]})
    store.save_loop_state("m", {"rounds": []})
    assert store.loop_state("l") == {"config": {"name": "l"}, "rounds": [{"round": 1, "met": 97}]}
    assert store.loop_state("m") == {"rounds": []}
    with pytest.raises(StoreError, match="the state of loop l is not JSON"):
        store.save_loop_state("l", {"fresh": float("nan")})
    assert store.loop_state("l") == {"config": {"name": "l"}, "rounds": [{"round": 1, "met": 97}]}  # unchanged
