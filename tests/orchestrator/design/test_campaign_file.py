"""Campaign files are rejected before any work with a message naming the target and field."""

import pytest

from circuits import CktLoopError
from orchestrator.design.campaign_file import load_campaign

GOOD = """
name: demo
budget: 300
targets:
  - name: fast
    specs:
      gain_db: {min: 60}
      ugbw_hz: {min: 1.0e9}
      pm_deg: {min: 60, max: 90}
  - name: slow
    specs: {gain_db: {min: 120}}
"""
ONE_TARGET = "targets: [{name: t, specs: {fom: {min: 1}}}]\n"


def test_a_good_campaign(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(GOOD)
    campaign = load_campaign(path)
    assert campaign.name == "demo" and campaign.budget == 300
    assert [t.name for t in campaign.targets] == ["fast", "slow"]
    assert campaign.targets[0].met_by({"status": "ok", "gain_db": 61, "ugbw_hz": 2e9, "pm_deg": 70})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("gain_db: {min: 120}", "gain: {min: 120}"), r"target 'slow', field 'gain': unknown spec"),
        (GOOD.replace("{min: 60, max: 90}", "{min: 90, max: 60}"), r"target 'fast', field 'pm_deg': min 90 > max 60"),
        (GOOD.replace("targets:", "targets: [").replace("budget: 300", "budget: 3"), r"malformed YAML"),
        (GOOD.replace("name: slow", "name: fast"), r"target 'fast' appears twice$"),
        (GOOD.replace("budget: 300", "budget: -1"), r"budget: input should be greater than or equal to 1, got -1$"),
        (
            GOOD.replace("    specs: {gain_db", "    spec: {gain_db"),
            r"targets\.1\.specs: field required; targets\.1\.spec: unknown key$",
        ),
        (
            "name: ' '\ntargets: [{name: t, specs: {fom: {min: 1}}}]\n",
            r"name: string should have at least 1 character, got ' '$",
        ),
        (
            "name: x\nbudget: '5'\ntargets: [{name: t, specs: {fom: {min: 1}}}]\n",
            r"budget: input should be a valid integer, got '5'$",
        ),
        ("name: x\ntargets: []\n", r"targets: list should have at least 1 item after validation, not 0, got \[\]$"),
    ],
)
def test_bad_campaigns(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CktLoopError, match=r"bad\.yaml: .*" + message):
        load_campaign(path)


def test_missing_file(tmp_path):
    with pytest.raises(CktLoopError, match="no such campaign file"):
        load_campaign(tmp_path / "none.yaml")
