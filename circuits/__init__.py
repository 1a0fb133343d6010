"""CktLoop's circuit domain model: OCB subgraph types, circuits, the random family, performance.

Pure Python and numpy: nothing here knows of Ray, torch or SQL.
"""

from circuits.circuit import Circuit, Node, structure_problems
from circuits.errors import CircuitError, CktLoopError
from circuits.family import FamilyConfig, Sample, generate, random_sizing, random_topology
from circuits.grid import GRIDS, ValueGrid, value_grid
from circuits.performance import Performance, SimStatus, figure_of_merit, ocb_figure_of_merit
from circuits.specs import SPEC_FIELDS
from circuits.subgraphs import SUBGRAPH_TYPES, SubgraphType, subgraph_type

__all__ = [
    "GRIDS",
    "SPEC_FIELDS",
    "SUBGRAPH_TYPES",
    "Circuit",
    "CircuitError",
    "CktLoopError",
    "FamilyConfig",
    "Node",
    "Performance",
    "Sample",
    "SimStatus",
    "SubgraphType",
    "ValueGrid",
    "figure_of_merit",
    "generate",
    "ocb_figure_of_merit",
    "random_sizing",
    "random_topology",
    "structure_problems",
    "subgraph_type",
    "value_grid",
]
