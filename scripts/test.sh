#!/usr/bin/env bash
# Set up, then run the test suite. ngspice and PostgreSQL (127.0.0.1:5432, database `test`) are
# required: a test that needs them fails rather than skips. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy  # every package (pyproject.toml [tool.mypy] files)
exec .venv/bin/python -m pytest --require-ngspice --require-postgres "$@"
