"""Dataset rows → tensors for the generator (reference §4.1, cleaned per §6.3, §6.9-6.11).

A row is an exported dataset member: ``id``, ``split``, ``circuit`` (a dict for ``Circuit.from_dict``),
``status`` and the specs. Only ``status == "ok"`` rows are used (failed simulations are not a class);
test rows whose joint spec class never occurs in training are dropped, as CktGen does. Table sizes
come from the ``SpecClasses`` preset, never from the data.

Per circuit (``MAX_NODES`` = 8 slots, topological order, In first, Out last):

* ``types`` / ``pos``: token ids, padding ``PAD_TYPE`` / ``PAD_POS``;
* ``mask``: True on real nodes;
* ``topo``: one-hot of each node's topological rank (= its index), zero rows on padding;
* ``adj``: adjacency, ``adj[u, v] = 1`` for an edge u→v (always u < v);
* ``values``: device values (r, c, gm) normalised to [0, 1] over the grid, 0 where absent;
* ``value_mask``: which of (r, c, gm) the node's type carries;
* ``spec``: the joint class, one index per axis.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from circuits.circuit import MAX_NODES, Circuit
from circuits.encoding import DEVICES, PAD_POS, PAD_TYPE, encode
from circuits.errors import CircuitError, CktLoopError
from circuits.grid import value_grid
from circuits.specs import SpecClass, SpecClasses, spec_classes
from circuits.subgraphs import N_TYPES, subgraph_type
from surrogate.data import NoTrainingRows

TENSOR_KEYS = ("types", "pos", "mask", "topo", "adj", "values", "value_mask", "spec")


def device_mask_table() -> torch.Tensor:
    """(N_TYPES + 1, 3) float: which of (r, c, gm) each type carries; the PAD row is all zero."""
    table = torch.zeros(N_TYPES + 1, len(DEVICES))
    for t in range(N_TYPES):
        devices = subgraph_type(t).devices
        for k, name in enumerate(DEVICES):
            table[t, k] = float(name in devices)
    return table


def normalise_values(k: np.ndarray | torch.Tensor, grid: str) -> Any:
    g = value_grid(grid)
    return (k - g.k_min) / float(g.k_max - g.k_min)


def denormalise_values(x: np.ndarray | torch.Tensor, grid: str) -> Any:
    g = value_grid(grid)
    return x * float(g.k_max - g.k_min) + g.k_min


def circuit_tensors(circuits: Sequence[Circuit], grid: str | None = None) -> dict[str, torch.Tensor]:
    """The encoder/decoder inputs for ``circuits`` (no ``spec``)."""
    n = len(circuits)
    types = np.full((n, MAX_NODES), PAD_TYPE, dtype=np.int64)
    pos = np.full((n, MAX_NODES), PAD_POS, dtype=np.int64)
    adj = np.zeros((n, MAX_NODES, MAX_NODES), dtype=np.float32)
    values = np.zeros((n, MAX_NODES, len(DEVICES)), dtype=np.float32)
    counts = np.zeros(n, dtype=np.int64)
    for i, circuit in enumerate(circuits):
        enc = encode(circuit)
        types[i], pos[i], adj[i], counts[i] = enc.types, enc.pos, enc.adj, enc.n_nodes
        values[i] = normalise_values(enc.values.astype(np.float32), grid or circuit.grid)
    mask = np.arange(MAX_NODES)[None, :] < counts[:, None]
    topo = np.eye(MAX_NODES, dtype=np.float32)[None].repeat(n, 0) * mask[:, :, None]
    value_mask = device_mask_table().numpy()[types]
    values = values * value_mask  # absent devices exactly 0 after normalisation
    return {
        "types": torch.from_numpy(types),
        "pos": torch.from_numpy(pos),
        "mask": torch.from_numpy(mask),
        "topo": torch.from_numpy(topo),
        "adj": torch.from_numpy(adj),
        "values": torch.from_numpy(values.astype(np.float32)),
        "value_mask": torch.from_numpy(value_mask.astype(np.float32)),
    }


def same_class_filter(spec: torch.Tensor) -> torch.Tensor:
    """(B, B) additive InfoNCE mask: −inf for off-diagonal pairs of the same class, 0 elsewhere.

    Same-class circuits are not negatives of each other (reference §4.1).
    """
    same = (spec[:, None, :] == spec[None, :, :]).all(-1)
    same.fill_diagonal_(False)
    out = torch.zeros(same.shape, dtype=torch.float32, device=spec.device)
    return out.masked_fill(same, float("-inf"))


@dataclass
class GeneratorData:
    """One split as tensors plus the row ids and classes they came from."""

    tensors: dict[str, torch.Tensor]
    ids: list[str]
    classes: list[SpecClass]

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, index: torch.Tensor | slice) -> dict[str, torch.Tensor]:
        return {k: v[index] for k, v in self.tensors.items()}

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[dict[str, torch.Tensor]]:
        """Mini-batches; shuffled (reproducibly) when a ``generator`` is given."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        for start in range(0, n, batch_size):
            yield self.batch(order[start : start + batch_size])


@dataclass
class Splits:
    train: GeneratorData
    test: GeneratorData
    spec: SpecClasses
    dropped: dict[str, int]  # reason → count
    train_circuits: list[Circuit]
    test_circuits: list[Circuit]


def rows_to_data(
    rows: Sequence[Mapping[str, Any]], spec: SpecClasses, circuits: Sequence[Circuit] | None = None
) -> tuple[GeneratorData, list[Circuit]]:
    """Tensors for rows already filtered to ok and classified."""
    circs = list(circuits) if circuits is not None else [Circuit.from_dict(r["circuit"]) for r in rows]
    classes = [spec.classify(r) for r in rows]
    if any(c is None for c in classes):
        raise CktLoopError("rows_to_data: every row must be status ok with finite specs")
    tensors = circuit_tensors(circs)
    tensors["spec"] = torch.tensor(classes, dtype=torch.long).reshape(len(rows), len(spec.axes))
    return GeneratorData(tensors, [str(r.get("id", i)) for i, r in enumerate(rows)], classes), circs  # type: ignore[arg-type]


def build_splits(rows: Iterable[Mapping[str, Any]], spec: SpecClasses | str = "ocb") -> Splits:
    """Train/test tensors: ok rows only; test rows whose topology or class occurs / does not occur in
    training dropped, so held-out metrics are on unseen topologies of seen classes.

    ``split`` "train" is training data; every other split value ("test", "val", …) is held out. The
    topology check is on the canonical topology: a dataset split by topology *number* can hold one
    canonical topology on both sides (``orchestrator.datasets.build.split_of``).
    """
    sc = spec_classes(spec) if isinstance(spec, str) else spec
    train_rows: list[Mapping[str, Any]] = []
    test_rows: list[Mapping[str, Any]] = []
    dropped = {"not_ok": 0, "bad_circuit": 0, "topology_in_train": 0, "unseen_class": 0}
    train_c: list[Circuit] = []
    test_c: list[Circuit] = []
    for row in rows:
        if sc.classify(row) is None:
            dropped["not_ok"] += 1
            continue
        try:
            circuit = Circuit.from_dict(row["circuit"])
        except (CircuitError, KeyError):
            dropped["bad_circuit"] += 1
            continue
        if row.get("split") == "train":
            train_rows.append(row)
            train_c.append(circuit)
        else:
            test_rows.append(row)
            test_c.append(circuit)
    if not train_rows:
        raise NoTrainingRows("no usable training rows (need split 'train' and status 'ok')")
    train_topologies = {c.topology_key for c in train_c}
    fresh = [c.topology_key not in train_topologies for c in test_c]
    dropped["topology_in_train"] = fresh.count(False)
    test_rows = [r for r, k in zip(test_rows, fresh) if k]
    test_c = [c for c, k in zip(test_c, fresh) if k]
    seen = {sc.classify(r) for r in train_rows}
    keep = [sc.classify(r) in seen for r in test_rows]
    dropped["unseen_class"] = keep.count(False)
    test_rows = [r for r, k in zip(test_rows, keep) if k]
    test_c = [c for c, k in zip(test_c, keep) if k]
    train, train_c = rows_to_data(train_rows, sc, train_c)
    test, test_c = rows_to_data(test_rows, sc, test_c)
    return Splits(train, test, sc, dropped, train_c, test_c)
