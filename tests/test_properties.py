"""Properties of the compute core that must hold for any input, checked on examples hypothesis makes up."""

from __future__ import annotations

import functools

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_inpaint_seg.cli import parse_slices
from napari_inpaint_seg.frame import pad_to_multiple, unpad
from napari_inpaint_seg.intensity import normalize_in_brain
from napari_inpaint_seg.localizer import fast_heatmap, final, reference_heatmap
from napari_inpaint_seg.metrics import dice
from napari_inpaint_seg.models.checkpoint import build_generator
from napari_inpaint_seg.models.config import ModelConfig

# Few examples, no deadline (the machine may be busy), no example database written into the repository.
FEW = settings(max_examples=12, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=60, deadline=None, database=None)

CONFIG = ModelConfig(gamma=8, modality="t1", base_channels=4, depth=2, context=16)


@functools.cache
def tiny_generator() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_generator(CONFIG).eval()


@st.composite
def slices(draw, low: int = 8, high: int = 26):
    """A slice in the intensity convention: random values in a random brain (any shape, possibly ragged)."""
    height, width = draw(st.integers(low, high)), draw(st.integers(low, high))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    brain = rng.random((height, width)) < draw(st.floats(0.0, 1.0))
    image = np.where(brain, rng.random((height, width)), 0.0).astype(np.float32)
    return image, brain


@FEW
@given(slices(high=20), st.integers(2, 6), st.booleans())
def test_heatmap_has_the_slice_shape_and_is_finite_non_negative(sliced, step, fast):
    image, brain = sliced
    run = fast_heatmap if fast else reference_heatmap
    heatmap = final(run(tiny_generator(), CONFIG, image, brain, step=step))
    assert heatmap.shape == image.shape
    assert np.isfinite(heatmap).all() and (heatmap >= 0).all()
    assert not heatmap[~brain].any()


@FEW
@given(slices(), st.integers(1, 5))
def test_localisation_is_deterministic(sliced, step):
    image, brain = sliced
    first = final(fast_heatmap(tiny_generator(), CONFIG, image, brain, step=step))
    second = final(fast_heatmap(tiny_generator(), CONFIG, image.copy(), brain.copy(), step=step))
    np.testing.assert_array_equal(first, second)


@MANY
@given(
    arrays(np.float32, st.tuples(st.integers(1, 40), st.integers(1, 40)), elements=st.floats(-1e3, 1e3, width=32)),
    st.integers(1, 16),
    st.integers(0, 64),
)
def test_pad_then_unpad_is_identity(image, multiple, minimum):
    padded, padding = pad_to_multiple(image, multiple, minimum)
    assert padded.shape[0] % multiple == 0 and padded.shape[1] % multiple == 0
    assert padded.shape[0] >= max(image.shape[0], minimum) and padded.shape[1] >= max(image.shape[1], minimum)
    np.testing.assert_array_equal(unpad(padded, padding), image)


@MANY
@given(arrays(bool, st.integers(1, 60)), st.data())
def test_dice_is_symmetric_and_between_zero_and_one(a, data):
    b = data.draw(arrays(bool, a.shape))
    value = dice(a, b)
    assert 0.0 <= value <= 1.0
    assert value == dice(b, a)
    assert dice(a, a) == 1.0


@MANY
@given(
    arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(1, 20)), elements=st.floats(allow_nan=True, allow_infinity=True, width=32)),
    st.data(),
)
def test_normalisation_lands_in_the_unit_range_and_zero_outside_the_brain(data, draw):
    brain = draw.draw(arrays(bool, data.shape))
    if np.isfinite(data).mean() < 0.5:  # refused, as tested elsewhere
        return
    out = normalize_in_brain(data, brain)
    assert out.shape == data.shape and np.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1
    assert not out[~brain].any()


@MANY
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=20))
def test_slice_lists_round_trip(numbers):
    assert parse_slices(",".join(map(str, numbers))) == numbers
