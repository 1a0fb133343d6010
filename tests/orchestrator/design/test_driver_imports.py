"""The campaign driver process (``cktloop campaign run``) loads no model stack: torch and PyG live
in the model actors, and the driver only needs the checkpoints' paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from generator.paths import DESIGN_CHECKPOINT as GENERATOR
from surrogate.paths import DESIGN_CHECKPOINT as SURROGATE
from tests.support import DRIVER, KNOBS, REPO


def drive(tmp_path: Path, *options: str) -> dict[str, object]:
    """What the driver of ``campaign run FILE OPTIONS`` has loaded and the settings it runs with."""
    spec = tmp_path / "one.yaml"
    spec.write_text("name: one\nbudget: 10\ntargets:\n  - name: a\n    specs: {gain_db: {min: 40}}\n")
    db = f"sqlite:///{tmp_path / 'store.db'}"
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, "campaign", "run", str(spec), "--db", db, "--no-progress", *options],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.splitlines()[0])


def test_campaign_run_does_not_import_torch_in_the_driver_and_its_defaults_are_the_settings_defaults(tmp_path):
    from orchestrator.design.campaign import CampaignSettings

    report = drive(tmp_path)
    defaults = CampaignSettings(generator=None, surrogate=None)
    assert report == {
        "heavy": [],
        "generator": str(GENERATOR),
        "surrogate": str(SURROGATE),
        **{f: getattr(defaults, f) for f in KNOBS},
    }


def test_campaign_run_options_reach_the_campaign_settings(tmp_path):
    report = drive(
        tmp_path,
        *("--workers", "3", "--searches-per-worker", "5", "--simulator-cpus", "0.5"),
        *("--target-timeout", "60", "--call-timeout", "30", "--startup-timeout", "90"),
    )
    assert [report[f] for f in KNOBS] == [3, 5, 0.5, 60.0, 30.0, 90.0]


def test_the_paths_modules_name_the_checkpoints_the_models_load_from():
    from generator import predict as generator_predict
    from surrogate import predict as surrogate_predict

    assert generator_predict.DESIGN_CHECKPOINT == GENERATOR and GENERATOR.is_file()
    assert surrogate_predict.DESIGN_CHECKPOINT == SURROGATE and SURROGATE.is_file()
