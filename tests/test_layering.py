"""Who may import whom: the README's layout table, checked on every import statement of every package.

Imports inside functions and under ``TYPE_CHECKING`` count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = ("circuits", "simulator", "storage", "surrogate", "generator", "orchestrator")
EDGES = {"ray", "fastapi", "starlette", "uvicorn"}  # Ray and HTTP live at the edges, in orchestrator only
MODELS = {"torch", "torch_geometric"}
SQL = {"sqlalchemy", "alembic", "psycopg"}

# package: (our packages it may import, third-party packages it may not)
RULES = {
    "circuits": (set(), EDGES | MODELS | SQL | {"PySpice"}),
    "simulator": ({"circuits"}, EDGES | MODELS | SQL),
    "storage": ({"circuits"}, EDGES | MODELS),
    "surrogate": ({"circuits", "simulator", "storage"}, EDGES | SQL),
    "generator": ({"circuits", "storage", "surrogate"}, EDGES | SQL),
    "orchestrator": (set(OURS), set()),
}


def imports(package: str) -> list[tuple[str, int, str]]:
    """(file, line, top-level module) for every absolute import in the package's source files."""
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found += [(str(path.relative_to(REPO)), node.lineno, name.split(".")[0]) for name in names]
    return found


def test_the_rules_cover_every_package():
    assert set(RULES) == set(OURS)
    assert all((REPO / package / "__init__.py").is_file() for package in OURS)


def test_the_scan_sees_imports_inside_functions():
    # ensure_ray imports ray in its body: a scan that saw only module-level imports would pass anything
    assert ("orchestrator/distributed/runtime.py", "ray") in {(f, m) for f, _, m in imports("orchestrator")}


@pytest.mark.parametrize("package", OURS)
def test_imports_point_down_the_layers(package):
    allowed, forbidden = RULES[package]
    others = set(OURS) - {package} - allowed
    wrong = [f"{f}:{line} imports {module}" for f, line, module in imports(package) if module in others | forbidden]
    assert not wrong, f"{package} may import {sorted(allowed) or 'none of ours'}, not: " + "; ".join(wrong)


def test_ray_is_imported_only_by_the_orchestrator():
    users = {package for package in OURS for _, _, module in imports(package) if module == "ray"}
    assert users == {"orchestrator"}
