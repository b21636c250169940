"""Small data the tests make themselves, and the optional real data folder.

Plugin tests: a toy skull-stripped volume and a tiny random-weight generator (``toy_scan_path``, ``tiny_model``).
Core tests: tiny model configuration/generator/checkpoint, synthetic slices and heads, and ``data_dir``: only
tests marked ``data`` read the real scans in ``../shared/data`` and they skip, saying why, when it is absent.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """One intra-op thread for torch here and in the commands tests start: the models are tiny, and several
    threads fighting over a busy machine's cores make each test many times slower, not faster."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)

# Non-identity geometry: anisotropic spacing, a flipped row axis and an offset; the axial axis is the last one.
# Rows run to posterior (0.9 mm), columns to the patient's left (1.1 mm), slices to superior (3 mm): the orientation of
# the LGG training slices, so the toy scan gets no note about lying turned.
TOY_AFFINE = np.array([[0.0, -1.1, 0.0, 40.0], [-0.9, 0.0, 0.0, -20.0], [0.0, 0.0, 3.0, 5.0], [0.0, 0.0, 0.0, 1.0]])
TOY_SHAPE = (48, 48, 4)
BLOB_CENTRE = (30, 18)  # (row, column) of the bright blob on every slice


def pytest_collection_modifyitems(config, items):
    """Without a display, GUI tests are skipped rather than aborting the whole run inside Qt."""
    if not sys.platform.startswith("linux") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    skip = pytest.mark.skip(reason="needs a display: run under xvfb-run -a")
    for item in items:
        if "gui" in item.keywords:
            item.add_marker(skip)


def toy_volume(shape=TOY_SHAPE, seed=0) -> np.ndarray:
    """A 'skull-stripped brain': a noisy disk on a zero background with a bright blob inside it."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    disk = (rows - shape[0] / 2) ** 2 + (cols - shape[1] / 2) ** 2 < 20**2
    blob = (rows - BLOB_CENTRE[0]) ** 2 + (cols - BLOB_CENTRE[1]) ** 2 < 5**2
    plane = np.where(disk, 0.4 + 0.05 * rng.standard_normal(shape[:2]), 0.0)
    plane = np.where(blob, 1.0, plane)
    volume = np.repeat(plane[:, :, None], shape[2], axis=2).astype(np.float32)
    return np.where(volume > 0, volume + 0.01 * np.arange(shape[2]), 0).astype(np.float32)


@pytest.fixture
def toy_scan_path(tmp_path):
    path = tmp_path / "toy_flair.nii.gz"
    nib.save(nib.Nifti1Image(toy_volume(), TOY_AFFINE), str(path))
    return path


@pytest.fixture
def tiny_model(tmp_path):
    import torch

    from napari_inpaint_seg.models.checkpoint import build_generator, save_generator
    from napari_inpaint_seg.models.config import ModelConfig

    torch.manual_seed(0)
    config = ModelConfig(gamma=8, modality="flair", base_channels=4, depth=2, context=16)
    path = tmp_path / "tiny.safetensors"
    save_generator(path, build_generator(config), config)
    return path


# ---------------------------------------------------------------------------------------------------------
# Core library tests


def find_data_dir() -> Path | None:
    """``$INPAINT_SEG_DATA``, else ``../shared/data`` next to the repository; None when neither exists."""
    for candidate in (os.environ.get("INPAINT_SEG_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "lgg").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = find_data_dir()
    if found is None:
        pytest.skip("real data not found: expected ../shared/data/lgg beside the repository (or set INPAINT_SEG_DATA)")
    return found


@pytest.fixture
def tiny_config():
    from napari_inpaint_seg.models.config import ModelConfig

    return ModelConfig(gamma=8, modality="t1", base_channels=4, depth=2, context=16)


@pytest.fixture
def tiny_generator(tiny_config):
    import torch

    from napari_inpaint_seg.models.checkpoint import build_generator

    torch.manual_seed(0)
    return build_generator(tiny_config).eval()


@pytest.fixture
def tiny_model_path(tmp_path, tiny_config, tiny_generator) -> Path:
    from napari_inpaint_seg.models.checkpoint import save_generator

    path = tmp_path / "tiny_t1.safetensors"
    save_generator(path, tiny_generator, tiny_config)
    return path


def brain_slice(size: int = 48, seed: int = 0, square: tuple[int, int, int] | None = (18, 24, 10)):
    """A skull-stripped-looking slice in [0, 1]: a textured disc (the brain, 0 outside) with a bright square.

    Returns (image, brain, tumour); ``square`` is (row, col, side) or None for a healthy slice.
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    centre = (size - 1) / 2
    brain = (rows - centre) ** 2 + (cols - centre) ** 2 <= (0.42 * size) ** 2
    texture = ndimage.gaussian_filter(rng.normal(size=(size, size)), 2)
    image = np.where(brain, 0.45 + 0.08 * texture / texture.std(), 0.0)
    tumour = np.zeros_like(brain)
    if square is not None:
        top, left, side = square
        tumour[top : top + side, left : left + side] = True
        tumour &= brain
        image[tumour] = 0.9 + 0.04 * rng.standard_normal(int(tumour.sum()))  # bright, textured like tissue
    return np.clip(image, 0, 1).astype(np.float32), brain, tumour


def head_volume(shape=(64, 64, 24), seed: int = 0) -> np.ndarray:
    """A crude head: a noisy bright ellipsoid on a zero background; deepbet finds a 'brain' in it."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    radius = np.sqrt(grid[0] ** 2 / 0.85**2 + grid[1] ** 2 / 0.75**2 + grid[2] ** 2 / 0.9**2)
    volume = np.where(radius < 1.0, 100.0 + 5 * rng.normal(size=shape), 0.0)
    return volume.astype(np.float32)


@pytest.fixture
def make_brain_slice():
    return brain_slice


@pytest.fixture
def make_head_volume():
    return head_volume
