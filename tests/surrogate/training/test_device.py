"""One device choice for training, evaluation and actors."""

import pytest
import torch

from circuits import CktLoopError
from surrogate.training.device import choose_device, set_threads


def test_choices():
    assert choose_device("cpu") == torch.device("cpu")
    assert choose_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(CktLoopError, match="device must be one of auto, cpu, cuda, got 'tpu'"):
        choose_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_an_error():
    with pytest.raises(CktLoopError, match="CUDA is not available"):
        choose_device("cuda")


def test_zero_threads_keeps_torchs_setting():
    before = torch.get_num_threads()
    try:
        set_threads(0)
        assert torch.get_num_threads() == before
        set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
