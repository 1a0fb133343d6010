"""The JSON of API v1: requests and answers of /v1/generate, /v1/predict, /v1/simulate, /v1/models, /healthz.

Field names are part of the interface (issue 17). Requests are strict (unknown keys rejected, no "5"
for 5); a circuit is the circuits package's JSON (``Circuit.to_dict``), validated into a ``Circuit``
when the request is read, so a bad one is a 422 naming its index and the field at fault. Caps that come
from the configuration (``n``, circuits per request) are checked by the services, also as 422s.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, WithJsonSchema, model_validator

from circuits import Circuit
from circuits.errors import CircuitError, CktLoopError
from circuits.specs import TARGET_FIELDS
from circuits.targets import Target
from generator.sampling import SAMPLING

SEED_MAX = 2**63 - 1  # torch's generators take seeds below 2**64; numpy any integer >= 0


def _circuit(value: Any) -> Circuit:
    if isinstance(value, Circuit):
        return value
    try:
        return Circuit.from_dict(value)
    except CircuitError as exc:
        raise ValueError(f"invalid circuit: {exc}") from None
    except (IndexError, KeyError, TypeError) as exc:  # a shape from_dict did not foresee: still the client's
        raise ValueError(f"invalid circuit: {type(exc).__name__} {exc}") from None


_NODE_SCHEMA = {
    "type": "object",
    "properties": {k: {"type": "integer"} for k in ("type", "pos", "r", "c", "gm")},
    "required": ["type", "pos"],
    "additionalProperties": False,
}
CIRCUIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Circuit",
    "description": "An OCB op-amp: subgraph nodes (type 0-25, slot pos 0-7, device values as grid indices "
    "R = 0.1 k MOhm, C = 10 k fF, |gm| = 0.1 k mS, k = 1..101) and edges between node indices.",
    "properties": {
        "grid": {"type": "string", "default": "ocb"},
        "nodes": {"type": "array", "items": _NODE_SCHEMA},
        "edges": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
        },
    },
    "required": ["nodes", "edges"],
    "additionalProperties": False,
}
CircuitJSON = Annotated[
    Circuit,
    PlainValidator(_circuit),
    PlainSerializer(lambda c: c.to_dict(), return_type=dict),
    WithJsonSchema(CIRCUIT_SCHEMA),
]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


def finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: a non-finite number is reported as null."""
    return value if value is not None and math.isfinite(value) else None


class Bounds(Request):
    min: float | None = None
    max: float | None = None


class GenerateRequest(Request):
    """Circuits for a target (bounds per spec) or for one spec class of the generator."""

    target: dict[str, Bounds] | None = Field(
        None, description=f"bounds per spec ({', '.join(TARGET_FIELDS)}), e.g. {{'gain_db': {{'min': 60}}}}"
    )
    spec_class: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, alias="class", description="one joint spec class of the generator, one index per axis"
    )
    n: int = Field(10, ge=1, description="circuits wanted (capped by the service's caps.max_n)")
    seed: int = Field(0, ge=0, le=SEED_MAX, description="the same seed gives the same circuits")
    sampling: Literal[SAMPLING] = Field("bank", description="generator latents: bank or spec")  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _one_goal(self) -> GenerateRequest:
        if (self.target is None) == (self.spec_class is None):
            raise ValueError("give exactly one of 'target' and 'class'")
        self.bounds()
        return self

    def bounds(self) -> Target | None:
        """The target as the design search reads it (unknown spec names, min > max: a ValueError)."""
        if self.target is None:
            return None
        specs = {k: b.model_dump(exclude_none=True) for k, b in self.target.items()}
        try:
            return Target.from_mapping("target", specs)
        except CktLoopError as exc:
            raise ValueError(re.sub(r"^target 'target', field '([^']*)'", r"target.\1", str(exc))) from None


class Predicted(Answer):
    """The surrogate's prediction for one circuit."""

    spec_class: list[int]
    class_prob: float | None = None
    gain_db: float | None = None
    ugbw_hz: float | None = None
    pm_deg: float | None = None
    pm_ocb_deg: float | None = None  # surrogates trained on OCB's phase-margin reading predict this instead
    fom: float | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Predicted:
        """A ``Surrogate.predict`` row (its embedding left out)."""
        values = {k: finite(float(row[k])) for k in cls.model_fields if k != "spec_class" and row.get(k) is not None}
        return cls(spec_class=[int(k) for k in row["spec_class"]], **values)


class GeneratedCircuit(Answer):
    circuit: CircuitJSON
    spec_class: list[int]  # the class the generator was asked for
    predicted: Predicted


class GenerateAnswer(Answer):
    model_version: str  # the generator's
    surrogate_version: str  # the model behind ``predicted``
    circuits: list[GeneratedCircuit]
    invalid: int = 0  # generated graphs that failed validation (left out of ``circuits``)


class CircuitsRequest(Request):
    circuits: list[CircuitJSON] = Field(min_length=1, description="circuits (capped by caps.max_circuits)")


class PredictAnswer(Answer):
    model_version: str
    predicted: list[Predicted]


class Measured(Answer):
    """ngspice's verdict on one circuit: status ok with its specs, or the reason it has none."""

    status: str
    gain_db: float | None = None
    ugbw_hz: float | None = None
    pm_deg: float | None = None
    fom: float | None = None
    error: str | None = None

    @classmethod
    def from_performance(cls, perf: Any) -> Measured:
        d = perf.to_dict()
        return cls(
            status=d["status"], error=d["error"], **{k: finite(d[k]) for k in ("gain_db", "ugbw_hz", "pm_deg", "fom")}
        )


class SimulateAnswer(Answer):
    simulator: str  # backend name and version
    measured: list[Measured]


class ModelInfo(Answer):
    version: str
    checkpoint: str
    spec_classes: dict[str, Any]  # name and axes (field, edges, sign)
    train_classes: list[list[int]] | None = None


class ModelsAnswer(Answer):
    generator: ModelInfo
    surrogate: ModelInfo


class Health(Answer):
    status: Literal["ok"]
    generator: str
    surrogate: str


class Problem(Answer):
    """Every 4xx/5xx answer: one line naming the field and the value, and the HTTP status."""

    error: str
    status: int
