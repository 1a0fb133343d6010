"""Circuits and topologies as table rows, written in bulk: shared by datasets and campaign candidates.

Writes use ``INSERT ... ON CONFLICT DO NOTHING`` executemany, so adding the same circuits twice, or
from several processes at once, is harmless. Rows go in a fixed global order (topologies, then
circuits, each sorted by key) so overlapping PostgreSQL writers cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, select

from circuits.circuit import Circuit
from storage.engine import insert_new
from storage.models import circuits, topologies

T = TypeVar("T")

CHUNK_SIZE = 5000  # rows per executemany
LOOKUP_CHUNK = 500  # keys per IN (...) lookup


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass(frozen=True)
class Identity:
    """What the tables store about a circuit, from its (cached) canonical form."""

    key: str
    topology_key: str
    circuit: dict[str, Any]
    structure: dict[str, Any]
    n_stages: int
    n_nodes: int
    grid: str

    @classmethod
    def of(cls, circuit: Circuit) -> Identity:
        c = circuit.canonical()
        structure = {"types": [n.type for n in c.nodes], "pos": [n.pos for n in c.nodes], "edges": c.to_dict()["edges"]}
        return cls(
            key=circuit.key,
            topology_key=circuit.topology_key,
            circuit=c.to_dict(),
            structure=structure,
            n_stages=circuit.n_stages,
            n_nodes=len(c.nodes),
            grid=circuit.grid,
        )


def add_circuits(conn: Connection, idents: Sequence[Identity], chunk_size: int = CHUNK_SIZE) -> None:
    """Insert the circuits and their topologies, skipping those already stored."""
    topo_rows: dict[str, dict[str, Any]] = {}
    circ_rows: dict[str, dict[str, Any]] = {}
    for ident in idents:
        topo_rows.setdefault(
            ident.topology_key,
            {
                "key": ident.topology_key,
                "n_stages": ident.n_stages,
                "n_nodes": ident.n_nodes,
                "structure": ident.structure,
            },
        )
        circ_rows.setdefault(
            ident.key,
            {"p_key": ident.key, "p_tkey": ident.topology_key, "grid": ident.grid, "circuit": ident.circuit},
        )
    insert_circuit = insert_new(conn, circuits).values(
        key=bindparam("p_key"),
        topology_id=select(topologies.c.id).where(topologies.c.key == bindparam("p_tkey")).scalar_subquery(),
    )
    for chunk in chunks([topo_rows[k] for k in sorted(topo_rows)], chunk_size):
        conn.execute(insert_new(conn, topologies), list(chunk))
    for chunk in chunks([circ_rows[k] for k in sorted(circ_rows)], chunk_size):
        conn.execute(insert_circuit, list(chunk))


def circuit_ids(conn: Connection, keys: Iterable[str]) -> dict[str, int]:
    """Row ids of the stored circuits among ``keys`` (unknown keys are left out)."""
    ids: dict[str, int] = {}
    for chunk in chunks(sorted(set(keys)), LOOKUP_CHUNK):
        ids.update(
            (k, i) for k, i in conn.execute(select(circuits.c.key, circuits.c.id).where(circuits.c.key.in_(chunk)))
        )
    return ids
