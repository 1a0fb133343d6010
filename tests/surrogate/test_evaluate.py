from __future__ import annotations

from pathlib import Path

import pytest
import torch

from circuits import Circuit
from orchestrator.cli.app import main
from surrogate.data import build
from surrogate.evaluate import evaluate, split_predictions
from surrogate.predict import Surrogate
from surrogate.train import train


@pytest.fixture
def checkpoint(jsonl: Path, tiny_config, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    return Path(train(tiny_config(epochs=1), jsonl, None, tmp_path / "run")["checkpoint"])


def test_predictions_pair_the_models_output_with_the_simulators_labels(checkpoint: Path, rows: list[dict]) -> None:
    surrogate = Surrogate.load(checkpoint, device="cpu")
    data = build(rows, surrogate.classes, norm=surrogate.norm)
    p = split_predictions(surrogate.model, data.test, surrogate.norm, batch_size=5)
    test_rows = {r["id"]: r for r in rows if r["split"] == "test" and r["status"] == "ok"}
    labels = torch.tensor([[test_rows[i][f] for f in ("gain_db", "ugbw_hz", "pm_ocb_deg")] for i in data.test.ids])
    assert torch.allclose(p.truth.double(), labels.double(), rtol=1e-4)
    assert torch.allclose(p.fom_truth.double(), torch.tensor([test_rows[i]["fom"] for i in data.test.ids]).double(),
                          rtol=1e-4)
    circuits = [Circuit.from_dict(test_rows[i]["circuit"]) for i in data.test.ids]
    direct = surrogate.predict(circuits)
    assert [d["gain_db"] for d in direct] == pytest.approx(p.spec[:, 0].tolist(), rel=1e-4)
    assert [d["fom"] for d in direct] == pytest.approx(p.fom.tolist(), rel=1e-4)


@pytest.mark.slow
def test_parity_plot_is_written_and_only_for_the_surrogate(checkpoint: Path, jsonl: Path, tmp_path: Path) -> None:
    plot = tmp_path / "plots" / "parity.png"
    evaluate(checkpoint, jsonl, plot=plot)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["evaluate", "surrogate", "--checkpoint", str(checkpoint), "--data", str(jsonl),
                 "--plot", str(tmp_path / "cli.png")]) == 0
    assert (tmp_path / "cli.png").is_file()
    assert main(["evaluate", "recon", "--data", str(jsonl), "--plot", str(tmp_path / "no.png")]) == 2
    assert not (tmp_path / "no.png").exists()
    (tmp_path / "a-file").write_text("")
    assert main(["evaluate", "surrogate", "--checkpoint", str(checkpoint), "--data", str(jsonl),
                 "--plot", str(tmp_path / "a-file" / "parity.png")]) == 2
