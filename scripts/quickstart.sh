#!/usr/bin/env bash
# The main job on the embedded defaults (local Ray, SQLite file cktloop.db, CPU, the shipped checkpoints):
# build the 10,000-circuit SPICE-labelled OCB dataset, run the demo design campaign (twenty targets: the
# generator proposes, the surrogate ranks, ngspice verifies, NSGA-II refines) and write its HTML report.
# Killed? Run it again: the dataset build and the campaign both resume.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p out
.venv/bin/cktloop dataset build --n "${CKTLOOP_N:-10000}" --seed 0
.venv/bin/cktloop dataset stats --name ocb-seed0 --plot out/dataset_stats.png
.venv/bin/cktloop campaign run orchestrator/campaigns/demo.yaml --reference ocb-seed0
.venv/bin/cktloop campaign export demo --out out/demo.jsonl
.venv/bin/cktloop campaign report demo --out out/demo-report
echo "quickstart: store cktloop.db, dataset plot out/dataset_stats.png, campaign out/demo.jsonl"
echo "quickstart: report $(pwd)/out/demo-report/index.html"
