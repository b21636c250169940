"""Device choice: a named device that is missing is a clear error, not torch's assertion deep in a run."""

from __future__ import annotations

import pytest
import torch

from napari_inpaint_seg.device import pick_device
from napari_inpaint_seg.errors import InputError


def test_auto_and_cpu_are_always_usable():
    assert pick_device("cpu") == "cpu"
    assert pick_device("auto") in ("cpu", "cuda", "mps")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_missing_gpu_is_named():
    with pytest.raises(InputError, match="no CUDA GPU"):
        pick_device("cuda")
    with pytest.raises(InputError, match="not one of"):
        pick_device("tpu")
