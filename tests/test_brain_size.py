"""The note for brains smaller, in pixels, than every brain the shipped models learnt from."""

import numpy as np
import pytest

from napari_inpaint_seg.brain_size import TRAINING_MEDIAN_SECTION_PX, TRAINING_SECTION_PX, largest_section_px, small_brain_note


def test_the_size_is_that_of_the_largest_axial_section():
    brain = np.zeros((64, 64, 3), bool)
    brain[5:15, 5:15, 0] = True  # 100 pixels
    brain[10:30, 10:40, 1] = True  # 600 pixels: the largest section
    brain[20:25, 20:25, 2] = True
    assert largest_section_px(brain) == pytest.approx(np.sqrt(600))
    assert largest_section_px(brain[:, :, 0]) == pytest.approx(10.0)  # a 2D slice is its own largest section


def test_only_a_brain_smaller_than_every_training_brain_gets_a_note(make_brain_slice):
    smallest = TRAINING_SECTION_PX[0]
    small = np.zeros((256, 256), bool)
    small[:100, :100] = True
    note = small_brain_note(small)
    assert note is not None and "100 pixels across" in note
    assert f"by about x{TRAINING_MEDIAN_SECTION_PX / 100:.1f}" in note
    assert note.endswith("Resample in-plane in the Localize widget, or inpaint-seg segment --in-plane-zoom auto, does it)")
    as_small_as_training = np.zeros((256, 256), bool)
    side = int(np.ceil(smallest))
    as_small_as_training[:side, :side] = True
    assert small_brain_note(as_small_as_training) is None
    assert small_brain_note(make_brain_slice(size=200)[1]) is None  # a disc about 149 pixels across
    assert small_brain_note(np.zeros((64, 64, 2), bool)) is None  # no brain: other messages say so
