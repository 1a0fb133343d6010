"""Array encoding for models: topological order, padding, and decoding of model outputs."""

import numpy as np
import pytest

from circuits import CircuitError, generate
from circuits.encoding import PAD_POS, PAD_TYPE, decode, encode


def test_round_trip_and_padding():
    for sample in generate(100, 4):
        e = encode(sample.circuit)
        assert e.types[0] == 0 and e.types[e.n_nodes - 1] == 1
        assert (e.types[e.n_nodes :] == PAD_TYPE).all() and (e.pos[e.n_nodes :] == PAD_POS).all()
        assert not e.adj[e.n_nodes :].any() and not e.adj[:, e.n_nodes :].any()
        assert np.array_equal(np.triu(e.adj, 1), e.adj)  # edges only go forward: topological order
        assert decode(e.types, e.pos, e.adj, e.values, e.n_nodes).key == sample.circuit.key


def test_decode_snaps_values_and_zeroes_absent_devices():
    e = encode(next(generate(1, 2)).circuit)
    noisy = e.values.astype(float) + 0.3
    noisy[1] = [5.0, 7.0, 9.0]  # Out has no devices
    noisy[2, 2] = 500.0  # beyond the grid
    circuit = decode(e.types, e.pos, e.adj, noisy, e.n_nodes)
    out = circuit.nodes[[n.type for n in circuit.nodes].index(1)]
    assert out.values() == (0, 0, 0)
    assert max(n.gm for n in circuit.nodes) <= 101


def test_invalid_model_output_names_the_problem():
    e = encode(next(generate(1, 2)).circuit)
    adj = e.adj.copy()
    adj[0, e.n_nodes - 1] = 1  # In straight to Out
    with pytest.raises(CircuitError, match="extra edge"):
        decode(e.types, e.pos, adj, e.values, e.n_nodes)
