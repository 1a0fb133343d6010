#!/usr/bin/env bash
# The main job on the embedded defaults (local Ray, SQLite file cktloop.db, CPU): build the
# 10,000-circuit SPICE-labelled OCB dataset and summarise it beside the published OCB-101 labels.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p out
.venv/bin/cktloop dataset build --n "${CKTLOOP_N:-10000}" --seed 0
.venv/bin/cktloop dataset stats --name ocb-seed0 --plot out/dataset_stats.png
.venv/bin/cktloop dataset export --name ocb-seed0 --out out/ocb-seed0.jsonl
echo "quickstart: store cktloop.db, export out/ocb-seed0.jsonl, plot out/dataset_stats.png"
