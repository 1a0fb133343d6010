"""Datasets: named, seeded draws from the circuit family, their members, and reading them back with
one simulator's results."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, exists, func, select, update

from circuits.circuit import Circuit
from storage.circuit_rows import CHUNK_SIZE, Identity, add_circuits, chunks
from storage.engine import Database, StoreError, insert_new
from storage.models import circuits, dataset_circuits, datasets, simulations, topologies
from storage.records import MEASURED_FIELDS, DatasetEntry, DatasetInfo, DatasetRow, Measured, from_row
from storage.validate import config_differences, json_value

PAGE_SIZE = 2000  # rows per page when streaming a dataset


def dataset_id(conn: Connection, name_or_id: int | str) -> int:
    """The id of a dataset named by its name or id, or a StoreError."""
    column = datasets.c.name if isinstance(name_or_id, str) else datasets.c.id
    found = conn.execute(select(datasets.c.id).where(column == name_or_id)).scalar()
    if found is None:
        raise StoreError(
            f"no dataset named {name_or_id!r}" if isinstance(name_or_id, str) else f"no dataset with id {name_or_id}"
        )
    return int(found)


EVERY_DATASET = "all"  # where a dataset is chosen by name: the training split of every dataset in the store


class DatasetStore(Database):
    """Datasets and their members."""

    def ensure_dataset(self, name: str, seed: int, n: int, config: dict[str, Any]) -> int:
        """The id of dataset ``name``, creating it if new. An existing one must have the same seed and
        config; a larger ``n`` grows it (a smaller one is its prefix and changes nothing)."""
        if not isinstance(name, str) or not name.strip():
            raise StoreError(f"a dataset name must be a non-empty string, got {name!r}")
        if n < 0:
            raise StoreError(f"dataset size must be >= 0, got {n}")
        config = json_value(config, f"the config of dataset {name!r}")

        def work(conn: Connection) -> int:
            conn.execute(insert_new(conn, datasets), {"name": name, "seed": int(seed), "n": int(n), "config": config})
            row = conn.execute(
                select(datasets.c.id, datasets.c.seed, datasets.c.config).where(datasets.c.name == name)
            ).one()
            problems = []
            if row.seed != seed:
                problems.append(f"seed {row.seed} (requested {seed})")
            if row.config != config:
                problems.extend(config_differences(row.config, config))
            if problems:
                raise StoreError(
                    f"dataset {name!r} already exists with different settings: {'; '.join(problems)}"
                    " (choose another name to make a new dataset)"
                )
            conn.execute(update(datasets).where(datasets.c.id == row.id, datasets.c.n < n).values(n=n))
            return int(row.id)

        return self._write(work)

    def add_dataset_circuits(
        self, dataset: int | str, rows: Sequence[DatasetRow], *, chunk_size: int = CHUNK_SIZE
    ) -> None:
        """Add circuits (and their topologies) to a dataset; rows already there are left alone."""
        if not rows:
            return
        idents = [Identity.of(r.circuit) for r in rows]
        members = sorted(
            (
                {
                    "position": int(r.position),
                    "p_ckey": ident.key,
                    "topology_number": int(r.topology_number),
                    "sizing": int(r.sizing),
                    "split": r.split,
                }
                for r, ident in zip(rows, idents)
            ),
            key=itemgetter("position"),
        )

        def work(conn: Connection) -> None:
            did = dataset_id(conn, dataset)
            add_circuits(conn, idents, chunk_size)
            insert_member = insert_new(conn, dataset_circuits).values(
                dataset_id=bindparam("p_dataset"),
                circuit_id=select(circuits.c.id).where(circuits.c.key == bindparam("p_ckey")).scalar_subquery(),
            )
            for chunk in chunks(members, chunk_size):
                conn.execute(insert_member, [{**m, "p_dataset": did} for m in chunk])
            _check_members(conn, did, members)

        self._write(work)

    def pending(self, dataset: int | str, simulator: str) -> list[tuple[str, Circuit]]:
        """(key, circuit) of the dataset's members not yet simulated by ``simulator``, in position order."""

        def work(conn: Connection) -> list[tuple[str, Any]]:
            did = dataset_id(conn, dataset)
            done = exists().where(simulations.c.circuit_id == circuits.c.id, simulations.c.simulator == simulator)
            stmt = (
                select(circuits.c.key, circuits.c.circuit)
                .join(dataset_circuits, dataset_circuits.c.circuit_id == circuits.c.id)
                .where(dataset_circuits.c.dataset_id == did, ~done)
                .order_by(dataset_circuits.c.position)
            )
            return [(k, c) for k, c in conn.execute(stmt)]

        return [(key, Circuit.from_dict(data)) for key, data in self._read(work)]

    def dataset_rows(self, dataset: int | str, simulator: str = "ngspice") -> Iterator[DatasetEntry]:
        """Every member of a dataset with its circuit and ``simulator``'s result, in position order.

        Streams in pages (each its own short read), so it never holds the database for long.
        """
        did = self._read(lambda conn: dataset_id(conn, dataset))
        sim = simulations.alias("s")
        base = (
            select(
                circuits.c.key,
                dataset_circuits.c.position,
                topologies.c.key.label("topology"),
                dataset_circuits.c.topology_number,
                dataset_circuits.c.sizing,
                dataset_circuits.c.split,
                circuits.c.circuit,
                *(sim.c[f] for f in MEASURED_FIELDS),
            )
            .select_from(dataset_circuits)
            .join(circuits, circuits.c.id == dataset_circuits.c.circuit_id)
            .join(topologies, topologies.c.id == circuits.c.topology_id)
            .outerjoin(sim, and_(sim.c.circuit_id == circuits.c.id, sim.c.simulator == simulator))
            .where(dataset_circuits.c.dataset_id == did)
            .order_by(dataset_circuits.c.position)
            .limit(PAGE_SIZE)
        )
        last = None
        while True:
            stmt = base if last is None else base.where(dataset_circuits.c.position > last)
            page: Sequence[Any] = self._read(partial(_all, stmt))
            for r in page:
                yield from_row(DatasetEntry, r, id=r.key, measured=from_row(Measured, r))
            if len(page) < PAGE_SIZE:
                return
            last = page[-1].position

    def dataset_keys(self, dataset: int | str, split: str | None = None) -> set[str]:
        """The circuits (keys) of a dataset, or of one of its splits: what ``dataset_rows`` would list, without
        reading the circuits and measurements (a 100,000-circuit pool's keys in one short query)."""

        def work(conn: Connection) -> set[str]:
            stmt = (
                select(circuits.c.key)
                .join(dataset_circuits, dataset_circuits.c.circuit_id == circuits.c.id)
                .where(dataset_circuits.c.dataset_id == dataset_id(conn, dataset))
            )
            if split is not None:
                stmt = stmt.where(dataset_circuits.c.split == split)
            return set(conn.execute(stmt).scalars().all())

        return self._read(work)

    def held_out_keys(self) -> set[str]:
        """The circuits (keys) of every dataset's held-out split: what models and loops are measured on, so
        reuse never proposes them whichever rows hold them."""
        stmt = (
            select(circuits.c.key)
            .join(dataset_circuits, dataset_circuits.c.circuit_id == circuits.c.id)
            .where(dataset_circuits.c.split == "test")
            .distinct()
        )
        return set(self._read(lambda conn: conn.execute(stmt).scalars().all()))

    def chosen_datasets(self, choice: str, use: str) -> list[DatasetInfo]:
        """The datasets ``choice`` names: every one in the store for ``EVERY_DATASET``, else the one of that
        name; a name not in the store is a ``StoreError`` naming what they were chosen for (``use``) and the
        datasets there."""
        found = self.datasets()
        if choice == EVERY_DATASET:
            return found
        chosen = [info for info in found if info.name == choice]
        if not chosen:
            there = ", ".join(info.name for info in found) or "none"
            raise StoreError(f"{use} dataset {choice!r} is not in the store (datasets there: {there})")
        return chosen

    def datasets(self) -> list[DatasetInfo]:
        """Every dataset, oldest first, with its member count and simulated counts per simulator."""

        def work(conn: Connection) -> list[DatasetInfo]:
            members: dict[int, int] = dict(
                conn.execute(
                    select(dataset_circuits.c.dataset_id, func.count()).group_by(dataset_circuits.c.dataset_id)
                ).all()
            )
            simulated: dict[int, dict[str, int]] = {}
            counts = conn.execute(
                select(dataset_circuits.c.dataset_id, simulations.c.simulator, func.count())
                .join(simulations, simulations.c.circuit_id == dataset_circuits.c.circuit_id)
                .group_by(dataset_circuits.c.dataset_id, simulations.c.simulator)
            )
            for did, simulator, count in counts:
                simulated.setdefault(did, {})[simulator] = count
            return [
                from_row(DatasetInfo, d, members=members.get(d.id, 0), simulated=simulated.get(d.id, {}))
                for d in conn.execute(select(datasets).order_by(datasets.c.id))
            ]

        return self._read(work)


def _all(stmt: Select[Any], conn: Connection) -> Sequence[Any]:
    return conn.execute(stmt).all()


def _check_members(conn: Connection, did: int, members: list[dict[str, Any]]) -> None:
    """Refuse rows whose position already holds another circuit (skipped silently by ON CONFLICT):
    the stream for this seed and config changed, e.g. with the generator's code."""
    stored = dict(
        conn.execute(
            select(dataset_circuits.c.position, circuits.c.key)
            .join(circuits, circuits.c.id == dataset_circuits.c.circuit_id)
            .where(
                dataset_circuits.c.dataset_id == did,
                dataset_circuits.c.position.between(members[0]["position"], members[-1]["position"]),
            )
        ).all()
    )
    for m in members:
        have = stored.get(m["position"])
        if have is not None and have != m["p_ckey"]:
            name = conn.execute(select(datasets.c.name).where(datasets.c.id == did)).scalar_one()
            raise StoreError(
                f"dataset {name!r} holds circuit {have} at position {m['position']}, not {m['p_ckey']}:"
                " the circuit stream changed (new generator code?); nothing added, use a new dataset name"
            )
