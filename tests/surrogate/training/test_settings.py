"""The shared training knobs: one vocabulary, range checks, old names renamed when read from a checkpoint."""

import pytest

from circuits import CktLoopError
from circuits.config import from_mapping
from surrogate.training.settings import TrainSettings, renamed


def test_old_names_are_renamed_only_where_the_new_one_is_absent():
    assert renamed({"num_threads": 2, "lr": 0.1}) == {"threads": 2, "lr": 0.1}
    assert renamed({"num_threads": 2, "threads": 1}) == {"num_threads": 2, "threads": 1}
    with pytest.raises(CktLoopError, match=r"ckpt: num_threads: unknown key$"):
        from_mapping({"num_threads": 2}, TrainSettings, where="ckpt")  # a config file must use the new name


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"device": "gpu"}, r"device: input should be 'auto', 'cpu' or 'cuda', got 'gpu'"),
        ({"threads": -1}, r"threads: input should be greater than or equal to 0, got -1"),
        ({"lr": 0}, r"lr: input should be greater than 0, got 0"),
        ({"betas": [0.9]}, r"betas\.1: field required"),
        ({"betas": [0.9, 1.5]}, r"betas\.1: input should be less than 1, got 1\.5"),
        ({"lr_drops": [3], "lr_schedule": "cosine"}, r"lr_drops work with lr_schedule 'plateau' only"),
        ({"grad_clip": 0.0}, r"grad_clip: input should be greater than 0, got 0\.0"),
    ],
)
def test_bad_knobs_name_field_and_value(data, message):
    with pytest.raises(CktLoopError, match=r"^train\.yaml: " + message):
        from_mapping(data, TrainSettings, where="train.yaml")


def test_defaults_and_lists_read_as_tuples():
    s = from_mapping({"betas": [0.5, 0.9], "lr_drops": [2, 4]}, TrainSettings)
    assert (s.betas, s.lr_drops, s.device, s.threads) == ((0.5, 0.9), (2, 4), "auto", 0)

