"""Circuit: validation rules, canonical identity, JSON round trip, topological order."""

import hashlib
import json
import re

import numpy as np
import pytest

from circuits import Circuit, CircuitError, CktLoopError, Node, generate, structure_problems
from circuits.grid import GRIDS, value_grid
from circuits.subgraphs import subgraph_type

IN, OUT = Node(0, 0), Node(1, 1)
CHAIN2 = [(0, 2), (2, 3), (3, 1)]
CHAIN3 = [(0, 2), (2, 3), (3, 4), (4, 1)]


def two_stage(*side: Node, extra: tuple[tuple[int, int], ...] = ()) -> tuple[list[Node], list[tuple[int, int]]]:
    """In, Out, stage 1 (+gm+, 10), stage 2 (-gm+, 20), then side nodes from index 4."""
    return [IN, OUT, Node(6, 2, gm=10), Node(7, 3, gm=20), *side], [*CHAIN2, *extra]


def three_stage() -> Circuit:
    """A 3-stage amp with all three side slots filled (8 nodes)."""
    nodes = [
        IN,
        OUT,
        Node(10, 2, c=5, gm=30),
        Node(7, 3, gm=40),
        Node(11, 4, c=7, gm=50),
        Node(22, 5, r=1, c=2, gm=3),  # slot A: In -> stage 2
        Node(4, 6, r=9, c=8),  # slot C: stage 2 -> Out
        Node(9, 7, gm=101),  # slot B: In -> Out
    ]
    edges = [*CHAIN3, (0, 5), (5, 3), (3, 6), (6, 1), (0, 7), (7, 1)]
    return Circuit(nodes, edges)


def permuted(c: Circuit, perm: list[int]) -> Circuit:
    """The same circuit with node ``perm[j]`` moved to index ``j``, edges remapped."""
    new_index = {old: new for new, old in enumerate(perm)}
    return Circuit(
        nodes=tuple(c.nodes[old] for old in perm),
        edges=tuple((new_index[u], new_index[v]) for u, v in c.edges),
        grid=c.grid,
    )


def sample_circuits(n: int = 200, seed: int = 7) -> list[Circuit]:
    return [s.circuit for s in generate(n, seed)]


def rejected(nodes, edges, pattern: str, grid: str = "ocb") -> CircuitError:
    """Assert that construction fails with a message matching ``pattern`` and return the error."""
    with pytest.raises(CircuitError, match=pattern) as info:
        Circuit(nodes, edges, grid=grid)
    assert any(re.search(pattern, p) for p in structure_problems(nodes, edges, grid))
    return info.value


# --- valid circuits and structure accessors -----------------------------------------------


def test_minimal_two_stage_is_valid():
    nodes, edges = two_stage()
    c = Circuit(nodes, edges)
    assert structure_problems(nodes, edges) == []
    assert c.spine == (0, 2, 3, 1)
    assert c.n_stages == 2
    assert c.side_nodes() == []
    assert c.grid == "ocb"


def test_structure_accessors_three_stage():
    c = three_stage()
    assert c.spine == (0, 2, 3, 4, 1)
    assert c.n_stages == 3
    assert c.side_nodes() == [5, 6, 7]
    assert sorted(c.predecessors(1)) == [4, 6, 7]
    assert sorted(c.successors(0)) == [2, 5, 7]
    assert c.predecessors(0) == []
    assert c.successors(1) == []


def test_edges_are_sorted_and_deduplicated():
    nodes, _ = two_stage()
    c = Circuit(nodes, [(3, 1), (0, 2), (2, 3), (0, 2)])
    assert c.edges == ((0, 2), (2, 3), (3, 1))
    assert isinstance(c.nodes, tuple)


def test_permutation_changes_storage_but_not_identity():
    c = three_stage()
    p = permuted(c, [7, 3, 0, 5, 1, 6, 4, 2])
    assert p != c
    assert p.canonical() == c.canonical()
    assert p.key == c.key
    assert p.topology_key == c.topology_key
    assert p.n_stages == 3


# --- identity: key, topology_key, canonical -------------------------------------------------


def test_key_is_invariant_under_every_node_permutation_of_generated_circuits():
    rng = np.random.default_rng(0)
    for c in sample_circuits(200):
        for _ in range(3):
            p = permuted(c, [int(i) for i in rng.permutation(len(c.nodes))])
            assert p.key == c.key
            assert p.topology_key == c.topology_key
            assert p.canonical() == c.canonical()


def test_keys_hash_the_sorted_json_of_the_canonical_circuit():
    """The keys are written out by hand for speed; they must stay the hash of the canonical JSON
    (stored keys name circuits across stores), e.g. this circuit's since the first store."""
    assert three_stage().key == "e1f36993ada624dc1c779a5977b1b132"
    assert three_stage().topology_key == "23e94d7a2e7c4ff9b626eaed17798700"

    def digest(data: object) -> str:
        return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]

    for c in sample_circuits(300, seed=3):
        canon = c.canonical()
        assert c.key == digest(canon.to_dict())
        assert c.topology_key == digest({"nodes": [[n.type, n.pos] for n in canon.nodes], "edges": canon.edges})
        assert canon == Circuit(canon.nodes, canon.edges, canon.grid)  # the renumbered circuit is a valid one


def test_key_is_invariant_with_duplicate_side_nodes():
    """Two identical side nodes at different spans must not make the key order-dependent."""
    nodes, edges = two_stage(Node(2, 5, r=3), Node(2, 5, r=3), extra=((0, 4), (4, 1), (0, 5), (5, 2)))
    c = Circuit(nodes, edges)
    assert permuted(c, [0, 1, 2, 3, 5, 4]).key == c.key


def test_different_values_give_different_keys_same_topology_key():
    c = three_stage()
    keys, topo_keys = {c.key}, {c.topology_key}
    for i, node in enumerate(c.nodes):
        for field in node_devices(node):
            values = [n.values() for n in c.nodes]
            bumped = list(values[i])
            slot = ("r", "c", "gm").index(field)
            bumped[slot] = bumped[slot] % 101 + 1
            values[i] = tuple(bumped)
            other = c.with_values(values)
            keys.add(other.key)
            topo_keys.add(other.topology_key)
    n_devices = sum(len(node_devices(n)) for n in c.nodes)
    assert len(keys) == 1 + n_devices
    assert topo_keys == {c.topology_key}


def node_devices(node: Node) -> tuple[str, ...]:
    return subgraph_type(node.type).devices


def test_topology_key_ignores_values_but_sees_types_and_spans():
    c = three_stage()
    resized = c.with_values([tuple(min(v, 1) for v in n.values()) for n in c.nodes])
    assert resized.topology_key == c.topology_key
    assert resized.key != c.key
    # A different type at the same place changes the topology.
    nodes = list(c.nodes)
    nodes[3] = Node(6, 3, gm=40)
    assert Circuit(nodes, c.edges).topology_key != c.topology_key
    # The same side element on a different span changes the topology.
    edges = [e for e in c.edges if e != (0, 5)] + [(2, 5)]
    assert Circuit(c.nodes, edges).topology_key != c.topology_key


def test_generated_keys_are_distinct_hex():
    circuits = sample_circuits(200)
    keys = [c.key for c in circuits]
    assert all(re.fullmatch(r"[0-9a-f]{32}", k) for k in keys)
    assert len(set(keys)) == len(keys)
    assert len({c.topology_key for c in circuits}) == 10  # 200 circuits = 10 topologies of 20


def test_canonical_is_idempotent_and_preserves_structure():
    for c in [three_stage(), *sample_circuits(50)]:
        canon = c.canonical()
        assert canon.canonical() == canon
        assert canon.key == c.key
        assert sorted(canon.nodes) == sorted(c.nodes)
        assert canon.n_stages == c.n_stages
        assert len(canon.edges) == len(c.edges)


def test_canonical_order_puts_nodes_by_position():
    c = permuted(three_stage(), [7, 6, 5, 4, 3, 2, 1, 0]).canonical()
    assert [n.pos for n in c.nodes] == list(range(8))


def test_with_values_checks_length_and_grid():
    c = three_stage()
    with pytest.raises(CircuitError, match="expected 8 value triples, got 2"):
        c.with_values([(0, 0, 0), (0, 0, 0)])
    values = [n.values() for n in c.nodes]
    values[2] = (0, 5, 102)
    with pytest.raises(CircuitError, match="gm value 102 is off"):
        c.with_values(values)


# --- JSON ---------------------------------------------------------------------------------


def test_json_round_trip():
    for c in [three_stage(), *sample_circuits(50)]:
        text = c.to_json()
        back = Circuit.from_json(text)
        assert back == c.canonical()
        assert back.key == c.key
        assert back.to_json() == text
        assert Circuit.from_json(c.to_json(indent=2)) == back
        assert Circuit.from_dict(c.to_dict()) == c  # to_dict keeps the stored order


def test_json_shape():
    data = json.loads(three_stage().to_json())
    assert set(data) == {"grid", "nodes", "edges"}
    assert data["grid"] == "ocb"
    assert data["nodes"][0] == {"type": 0, "pos": 0, "r": 0, "c": 0, "gm": 0}
    assert all(isinstance(e, list) and len(e) == 2 for e in data["edges"])


def test_from_dict_defaults_grid_and_absent_values():
    data = {"nodes": [{"type": 0, "pos": 0}, {"type": 1, "pos": 1}, {"type": 6, "pos": 2, "gm": 5},
                      {"type": 7, "pos": 3, "gm": 6}],
            "edges": [[0, 2], [2, 3], [3, 1]]}  # fmt: skip
    c = Circuit.from_dict(data)
    assert c.grid == "ocb"
    assert c.nodes[0] == Node(0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("{", r"malformed JSON: .* at line 1 column 2"),
        ("", r"malformed JSON"),
        ("not json", r"malformed JSON"),
        ("[1, 2]", r"circuit must be a JSON object, got list"),
        ("42", r"circuit must be a JSON object, got int"),
        ("null", r"circuit must be a JSON object, got NoneType"),
        ('{"nodes": [], "edges": [], "extra": 1, "more": 2}', r"unknown circuit field\(s\): extra, more"),
        ('{"edges": []}', r"circuit field 'nodes' must be a list"),
        ('{"nodes": {}, "edges": []}', r"circuit field 'nodes' must be a list"),
        ('{"nodes": []}', r"circuit field 'edges' must be a list"),
        ('{"nodes": [], "edges": [], "grid": 3}', r"circuit field 'grid' must be a string, got 3"),
        ('{"nodes": [5], "edges": []}', r"node 0 must be an object"),
        ('{"nodes": [{"type": 0, "pos": 0, "x": 1}], "edges": []}', r"node 0: unknown field\(s\) x"),
        ('{"nodes": [{"pos": 0}], "edges": []}', r"node 0: missing field 'type'"),
        ('{"nodes": [{"type": 0}], "edges": []}', r"node 0: missing field 'pos'"),
        (
            '{"nodes": [{"type": 6, "pos": 2, "gm": 1.5}], "edges": []}',
            r"node 0: field 'gm' must be an integer, got 1\.5",
        ),
        ('{"nodes": [{"type": true, "pos": 2}], "edges": []}', r"node 0: field 'type' must be an integer, got True"),
        ('{"nodes": [{"type": "6", "pos": 2}], "edges": []}', r"node 0: field 'type' must be an integer, got '6'"),
        ('{"nodes": [], "edges": [[0, 1, 2]]}', r"edge 0 must be a pair of node indices"),
        ('{"nodes": [], "edges": [[0, 1.0]]}', r"edge 0 must be a pair of node indices"),
        ('{"nodes": [], "edges": [[0, true]]}', r"edge 0 must be a pair of node indices"),
        ('{"nodes": [], "edges": [], "grid": "fine"}', r"unknown value grid 'fine'"),
    ],
)
def test_bad_json_is_rejected_naming_the_problem(text, pattern):
    with pytest.raises(CircuitError, match=pattern):
        Circuit.from_json(text)


def test_json_values_are_validated_like_constructor():
    data = three_stage().to_dict()
    data["nodes"][2]["gm"] = 0
    with pytest.raises(CircuitError, match=r"node 2: gm value 0 is off the 'ocb' grid \(1\.\.101\)"):
        Circuit.from_dict(data)


def test_circuit_error_is_a_cktloop_error_and_value_error():
    with pytest.raises(CktLoopError):
        Circuit.from_json("{")
    assert issubclass(CircuitError, ValueError)


# --- validation rules -------------------------------------------------------------------------


@pytest.mark.parametrize("bad_type", [26, -1, 99])
def test_unknown_type(bad_type):
    nodes, edges = two_stage()
    nodes[2] = Node(bad_type, 2, gm=10)
    rejected(nodes, edges, rf"node 2: unknown node type {bad_type} \(expected an integer 0\.\.25\)")


def test_bool_type_is_not_a_type():
    nodes, edges = two_stage()
    nodes[0] = Node(True, 0)  # True == 1 == Out, but a bool is not a type index
    rejected(nodes, edges, r"node 0: unknown node type True")


@pytest.mark.parametrize("pos", [8, -1, 100])
def test_position_out_of_range(pos):
    nodes, edges = two_stage(Node(2, pos, r=3), extra=((0, 4), (4, 1)))
    rejected(nodes, edges, rf"node 4: position {pos} is not in 0\.\.7")


def test_bool_position_is_rejected():
    nodes, edges = two_stage()
    nodes[1] = Node(1, True)
    rejected(nodes, edges, r"node 1: position True is not in 0\.\.7")


def test_in_not_at_position_zero():
    nodes, edges = two_stage()
    nodes[0] = Node(0, 5)
    rejected(nodes, edges, r"node 0: type In cannot sit at position 5")


def test_out_not_at_position_one():
    nodes, edges = two_stage()
    nodes[1] = Node(1, 6)
    rejected(nodes, edges, r"node 1: type Out cannot sit at position 6")


def test_stage_at_in_position():
    nodes, edges = two_stage()
    nodes[2] = Node(6, 0, gm=10)
    rejected(nodes, edges, r"node 2: type \+gm\+ cannot sit at position 0")


def test_two_outs():
    nodes, edges = two_stage(OUT)
    rejected(nodes, edges, r"a circuit needs exactly one Out node, got 2")


def test_two_ins():
    nodes, edges = two_stage(IN)
    rejected(nodes, edges, r"a circuit needs exactly one In node, got 2")


def test_missing_stage_two():
    nodes, edges = [IN, OUT, Node(6, 2, gm=10)], [(0, 2), (2, 1)]
    rejected(nodes, edges, r"needs stages at positions 2, 3 and optionally 4, got \[2\]")


def test_stage_three_without_stage_two():
    rejected(
        [IN, OUT, Node(6, 2, gm=10), Node(6, 4, gm=10)],
        [(0, 2), (2, 3), (3, 1)],
        r"needs stages at positions 2, 3 and optionally 4, got \[2, 4\]",
    )


def test_main_position_used_twice():
    nodes, edges = two_stage(Node(6, 3, gm=1))
    rejected(nodes, edges, r"main-path position 3 is used 2 times")


@pytest.mark.parametrize("fb_type", [8, 9, 12, 13, 16, 17, 20, 21, 24, 25])
def test_feedback_type_on_main_path(fb_type):
    c = three_stage()
    nodes, edges = list(c.nodes), c.edges
    t = subgraph_type(fb_type)
    nodes[4] = Node(fb_type, 4, r=5 if t.has_r else 0, c=5 if t.has_c else 0, gm=5)
    rejected(nodes, edges, rf"node 4: feedback type {re.escape(t.name)} on the main path \(position 4\)")


@pytest.mark.parametrize(
    ("ptype", "values"), [(2, {"r": 5}), (3, {"c": 5}), (4, {"r": 5, "c": 5}), (5, {"r": 5, "c": 5})]
)
def test_passive_type_on_main_path(ptype, values):
    """Reference §1.4: main-path stages are never passive (a bare C stage would leave its net floating)."""
    nodes, edges = two_stage()
    nodes[2] = Node(ptype, 2, **values)
    rejected(nodes, edges, r"node 2: passive type .* on the main path \(position 2\)")


@pytest.mark.parametrize("ff_type", [6, 7, 10, 11, 14, 15, 18, 19, 22, 23])
def test_any_feedforward_gm_type_may_be_a_stage(ff_type):
    t = subgraph_type(ff_type)
    nodes, edges = two_stage()
    nodes[3] = Node(ff_type, 3, r=1 if t.has_r else 0, c=101 if t.has_c else 0, gm=50)
    assert Circuit(nodes, edges).n_stages == 2


@pytest.mark.parametrize("k", [0, 102, -5])
def test_value_off_grid(k):
    nodes, edges = two_stage()
    nodes[3] = Node(7, 3, gm=k)
    rejected(nodes, edges, rf"node 3: gm value {k} is off the 'ocb' grid \(1\.\.101\) for type -gm\+")


@pytest.mark.parametrize("k", [0, 102])
def test_side_value_off_grid(k):
    nodes, edges = two_stage(Node(4, 6, r=50, c=k), extra=((2, 4), (4, 1)))
    rejected(nodes, edges, rf"node 4: c value {k} is off the 'ocb' grid")


@pytest.mark.parametrize("k", [1, 101])
def test_grid_ends_are_on_the_grid(k):
    nodes, edges = two_stage(Node(18, 5, r=k, c=k, gm=k), extra=((0, 4), (4, 1)))
    nodes[2] = Node(6, 2, gm=k)
    assert Circuit(nodes, edges).nodes[4].values() == (k, k, k)


def test_bool_value_is_off_grid():
    nodes, edges = two_stage()
    nodes[2] = Node(6, 2, gm=True)
    rejected(nodes, edges, r"node 2: gm value True is off the 'ocb' grid")


def test_nonzero_value_for_absent_device():
    nodes, edges = two_stage()
    nodes[2] = Node(6, 2, r=3, gm=10)
    rejected(nodes, edges, r"node 2: type \+gm\+ has no r device but r=3")


def test_terminal_with_value():
    nodes, edges = two_stage()
    nodes[1] = Node(1, 1, c=1)
    rejected(nodes, edges, r"node 1: type Out has no c device but c=1")


def test_unknown_grid():
    nodes, edges = two_stage()
    rejected(nodes, edges, r"unknown value grid 'nope' \(known: ocb\)", grid="nope")


@pytest.mark.parametrize("n", [0, 2, 9])
def test_node_count(n):
    nodes = [IN, OUT, Node(6, 2, gm=1), Node(6, 3, gm=1)] + [Node(2, 5, r=1)] * 5
    rejected(nodes[:n], [], rf"a circuit has 3 to 8 nodes, got {n}")


def test_self_loop():
    nodes, edges = two_stage(extra=((2, 2),))
    rejected(nodes, edges, r"edge \d+ \(2, 2\) is a self-loop")


@pytest.mark.parametrize("edge", [(3, 9), (-1, 2), (4, 1)])
def test_edge_to_missing_node(edge):
    nodes, edges = two_stage(extra=(edge,))
    rejected(nodes, edges, rf"edge \d+ \({edge[0]}, {edge[1]}\) refers to a node that does not exist")


def test_missing_main_path_edge():
    nodes, _ = two_stage()
    rejected(nodes, [(0, 2), (3, 1)], r"missing main-path edge 2 -> 3")


@pytest.mark.parametrize("edge", [(0, 3), (0, 1), (2, 1)])
def test_extra_main_path_edge(edge):
    nodes, edges = two_stage(extra=(edge,))
    rejected(nodes, edges, rf"extra edge on the main path: edge {edge[0]} -> {edge[1]}")


@pytest.mark.parametrize("edge", [(3, 2), (1, 0), (1, 3), (2, 0)])
def test_main_path_back_edge_is_a_cycle(edge):
    nodes, edges = two_stage(extra=(edge,))
    rejected(nodes, edges, rf"cycle through the main path: edge {edge[0]} -> {edge[1]}")


@pytest.mark.parametrize(("src", "dst"), [(3, 2), (1, 0), (1, 2), (2, 0)])
def test_side_node_spanning_backwards_is_a_cycle(src, dst):
    nodes, edges = two_stage(Node(2, 5, r=3), extra=((src, 4), (4, dst)))
    rejected(nodes, edges, rf"side node 4 closes a cycle: {src} -> 4 -> {dst} runs backwards")


def test_side_node_spanning_one_net_is_rejected():
    nodes, edges = two_stage(Node(2, 5, r=3), extra=((2, 4), (4, 2)))
    rejected(nodes, edges, r"side node 4 closes a cycle")


def test_side_node_with_two_inputs():
    nodes, edges = two_stage(Node(2, 5, r=3), extra=((0, 4), (2, 4), (4, 1)))
    rejected(nodes, edges, r"side node 4 needs exactly one incoming and one outgoing edge, got 2 and 1")


def test_side_node_with_two_outputs():
    nodes, edges = two_stage(Node(2, 5, r=3), extra=((0, 4), (4, 2), (4, 1)))
    rejected(nodes, edges, r"side node 4 needs exactly one incoming and one outgoing edge, got 1 and 2")


def test_dangling_side_node():
    nodes, edges = two_stage(Node(2, 5, r=3))
    rejected(nodes, edges, r"side node 4 needs exactly one incoming and one outgoing edge, got 0 and 0")


def test_side_node_chained_to_side_node():
    nodes, edges = two_stage(Node(2, 5, r=3), Node(3, 7, c=3), extra=((0, 4), (4, 5), (5, 1)))
    rejected(nodes, edges, r"side node 4 must connect two main-path nodes, got 0 -> 4 -> 5")


@pytest.mark.parametrize("stages", [2, 3])
def test_side_node_spanning_last_stage_to_out(stages):
    if stages == 2:
        nodes, edges = two_stage(Node(2, 5, r=3), extra=((3, 4), (4, 1)))  # stage 2 (node 3) is last
        side = 4
    else:
        c = three_stage()  # move slot C (node 6) from stage 2 -> Out to stage 3 -> Out
        nodes, edges = list(c.nodes), [e for e in c.edges if e != (3, 6)] + [(4, 6)]
        side = 6
    rejected(nodes, edges, rf"side node {side} spans the last stage's output and Out, which are the same net")


def test_every_problem_is_listed():
    nodes = [IN, OUT, Node(8, 2, gm=0), Node(26, 3)]
    problems = structure_problems(nodes, CHAIN2)
    assert len(problems) == 3
    assert any("feedback type" in p for p in problems)
    assert any("gm value 0" in p for p in problems)
    assert any("unknown node type 26" in p for p in problems)


def test_all_valid_side_spans_three_stage():
    """Every forward span between distinct spine nets is accepted, with Out (not the last stage) as the
    name of the output net, so one circuit has one key."""
    spine = [0, 2, 3, 4, 1]
    accepted = []
    for i, a in enumerate(spine):
        for b in spine[i + 1 :]:
            nodes = [IN, OUT, Node(6, 2, gm=1), Node(6, 3, gm=1), Node(6, 4, gm=1), Node(3, 5, c=1)]
            problems = structure_problems(nodes, [*CHAIN3, (a, 5), (5, b)])
            if not problems:
                accepted.append((a, b))
    assert sorted(accepted) == sorted([(0, 2), (0, 3), (0, 1), (2, 3), (2, 1), (3, 1)])


def test_side_node_ending_at_the_last_stage_is_rejected():
    nodes = [IN, OUT, Node(6, 2, gm=1), Node(6, 3, gm=1), Node(2, 5, r=1)]
    rejected(nodes, [(0, 2), (2, 3), (3, 1), (2, 4), (4, 3)], r"side node 4 ends at the last stage.*connect it to Out")


# --- topological order -------------------------------------------------------------------------


def assert_topological(c: Circuit) -> None:
    order = c.topological_order()
    assert sorted(order) == list(range(len(c.nodes)))
    assert c.nodes[order[0]].type == 0
    assert c.nodes[order[-1]].type == 1
    rank = {v: i for i, v in enumerate(order)}
    for u, v in c.edges:
        assert rank[u] < rank[v], (u, v, order)


def test_topological_order_three_stage():
    c = three_stage()
    assert c.topological_order() == [0, 2, 5, 3, 4, 6, 7, 1]
    assert_topological(c)


def test_topological_order_generated_and_permuted():
    rng = np.random.default_rng(1)
    for c in sample_circuits(200, seed=3):
        assert_topological(c)
        assert_topological(permuted(c, [int(i) for i in rng.permutation(len(c.nodes))]))


# --- value grid ---------------------------------------------------------------------------------


def test_ocb_grid():
    g = value_grid("ocb")
    assert g is GRIDS["ocb"]
    assert (g.k_min, g.k_max) == (1, 101)
    assert [g.contains(k) for k in (0, 1, 101, 102)] == [False, True, True, False]
    assert g.ohms(1) == pytest.approx(1e5)  # 0.1 MΩ
    assert g.ohms(101) == pytest.approx(10.1e6)
    assert g.farads(1) == pytest.approx(10e-15)  # 10 fF
    assert g.farads(101) == pytest.approx(1010e-15)
    assert g.siemens(1) == pytest.approx(0.1e-3)  # 0.1 mS
    assert g.siemens(101) == pytest.approx(10.1e-3)


def test_unknown_grid_name():
    with pytest.raises(ValueError, match=r"unknown value grid 'x' \(known: ocb\)"):
        value_grid("x")
