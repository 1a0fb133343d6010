"""ngspice through its shared library, many circuits per deck.

ngspice's shared library is a per-process singleton: use one backend per process (never
threads). Each deck holds up to ``circuits_per_deck`` circuits with prefixed, disjoint nets, so
one AC sweep solves them all (block-diagonal matrix, identical results) and the per-deck cost is
shared. If a deck fails, its circuits are re-run one per deck so the culprit alone is marked.
PySpice loads and initialises the library; vectors are read straight from ngspice's memory, and
every circuit and plot is removed after use, so memory stays flat over long runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from ctypes.util import find_library
from typing import Any

import numpy as np

from circuits import Circuit, CktLoopError, Performance, SimStatus
from simulator.measure import measure
from simulator.netlist import AC_LINE, INPUT_NET, OUTPUT_NET, Element, elements, spice_lines

RELEASE_HISTORY_EVERY = 200  # decks between frees of ngspice's command history


class NgspiceUnavailable(CktLoopError):
    """ngspice's shared library cannot be loaded."""


class NgspiceBackend:
    """A simulator backend driving libngspice in this process."""

    name = "ngspice"

    def __init__(self, circuits_per_deck: int = 50) -> None:
        if circuits_per_deck < 1:
            raise ValueError(f"circuits_per_deck must be >= 1, got {circuits_per_deck}")
        self.circuits_per_deck = circuits_per_deck
        self._shared: Any = None
        self._decks = 0

    @staticmethod
    def available() -> bool:
        return find_library("ngspice") is not None

    def _ensure(self) -> Any:
        if self._shared is None:
            logging.getLogger("PySpice").setLevel(logging.CRITICAL)  # "Unsupported Ngspice version" is harmless
            try:
                from PySpice.Spice.NgSpice.Shared import NgSpiceShared
            except ImportError as exc:  # pragma: no cover - PySpice is a hard dependency
                raise NgspiceUnavailable(f"PySpice is not installed: {exc}") from None
            try:
                self._shared = NgSpiceShared.new_instance()
            except OSError as exc:
                raise NgspiceUnavailable(
                    f"cannot load libngspice ({exc}); install it: apt-get install ngspice libngspice0 libngspice0-dev"
                ) from None
            # Debian's ngspice is built with OpenMP and runs 2 threads per process by default. Our decks are
            # far too small to gain from them, and after each run the idle OpenMP thread spins for a while:
            # on 2 cores that slowed a generator in the same process 12-fold (15 -> 180 ms per call).
            # Parallelism comes from worker processes instead.
            self._shared.exec_command("set num_threads=1")
        return self._shared

    @property
    def version(self) -> str:
        return str(self._ensure().ngspice_version)

    def simulate(self, circuits: Sequence[Circuit]) -> list[Performance]:
        return self.simulate_elements([elements(c) for c in circuits])

    def simulate_elements(self, blocks: Sequence[Sequence[Element]]) -> list[Performance]:
        """Simulate element lists driven at ``inp`` and measured at ``out`` (one result per block)."""
        results: list[Performance] = []
        for start in range(0, len(blocks), self.circuits_per_deck):
            chunk = blocks[start : start + self.circuits_per_deck]
            batch = self._simulate_deck(chunk)
            if batch is None:  # the deck failed: isolate the culprit(s)
                batch = [(self._simulate_deck([c]) or [self._failure()])[0] for c in chunk]
            results.extend(batch)
        return results

    # --- internals ----------------------------------------------------------------------------

    def _command(self, command: str | None) -> int:
        lib = self._ensure()._ngspice_shared
        return int(lib.ngSpice_Command(command.encode() if command is not None else self._null()))

    def _null(self) -> Any:
        from PySpice.Spice.NgSpice.Shared import FFI

        return FFI.NULL

    def _failure(self) -> Performance:
        text = " ".join(line.strip() for line in self._ensure()._stderr if line.strip()) or "ngspice failed"
        return Performance.failed(SimStatus.SIM_ERROR, text[:500])

    def _simulate_deck(self, chunk: Sequence[Sequence[Element]]) -> list[Performance] | None:
        """Run one deck; ``None`` if ngspice reports an error or a vector is missing."""
        shared = self._ensure()
        prefixes = [f"c{k}_" for k in range(len(chunk))]
        lines = ["* cktloop batch"]
        for prefix, block in zip(prefixes, chunk):
            lines += spice_lines(block, prefix)
        lines += [AC_LINE, ".end", ""]
        try:
            shared.clear_output()
            ok = self._load(lines) == 0 and not self._errors() and self._command("run") == 0 and not self._errors()
            if not ok:
                return None
            freq = self._vector("frequency")
            if freq is None:
                return None
            results = []
            for prefix in prefixes:
                out, inp = self._vector(prefix + OUTPUT_NET), self._vector(prefix + INPUT_NET)
                if out is None or inp is None:
                    return None
                with np.errstate(divide="ignore", invalid="ignore"):
                    results.append(measure(freq.real, out / inp))
            return results
        finally:
            self._command("remcirc")
            self._command("destroy all")
            self._decks += 1
            if self._decks % RELEASE_HISTORY_EVERY == 0:
                self._command(None)

    def _errors(self) -> bool:
        shared = self._ensure()
        for line in shared._stderr + shared._stdout:
            low = line.lower()
            if "error" in low or "singular" in low or "aborted" in low:
                return True
        return False

    def _load(self, lines: list[str]) -> int:
        from PySpice.Spice.NgSpice.Shared import FFI, ffi

        keep = [ffi.new("char[]", line.encode()) for line in lines]
        array = ffi.new("char *[]", [*keep, FFI.NULL])
        return int(self._ensure()._ngspice_shared.ngSpice_Circ(array))

    def _vector(self, name: str) -> np.ndarray | None:
        from PySpice.Spice.NgSpice.Shared import FFI, ffi

        info = self._ensure()._ngspice_shared.ngGet_Vec_Info(name.encode())
        if info == FFI.NULL or info.v_length == 0:
            return None
        n = info.v_length
        if info.v_compdata != FFI.NULL:
            return np.frombuffer(ffi.buffer(info.v_compdata, n * 16), dtype=np.complex128).copy()
        return np.frombuffer(ffi.buffer(info.v_realdata, n * 8), dtype=np.float64).astype(complex)
