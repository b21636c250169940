"""Whether a scan's brain is as large, in pixels, as the brains the shipped models learnt from.

The LGG slices the shipped models were trained on were resized to 256x256 and carry no voxel size, so the models
know a brain by its size in pixels alone; the window (gamma), the heat's smoothing, the rim left out of the scores
and the refinement radii are pixels too. A brain much smaller than any training brain (a low-resolution scan, a
small 2D image) gets windows that cover much of it, and the labels suffer: validation scans resampled in-plane to
half their size lost about 0.19 of slice Dice, and 0.07 at 0.7 of it (docs/robustness.md). Resampled to 1.5 or 2
times their size they lost less (0.037 and 0.026), and a large brain leaves the windows room, so only small ones are
reported. Nothing is resampled unless the user asks (the CLI's ``--in-plane-zoom``, :mod:`.in_plane`; the Localize widget's
*Resample in-plane*): this says when to.
"""

from __future__ import annotations

import numpy as np

# Smallest and largest largest-axial-section size (square root of its area, in pixels) over the shipped models'
# training patients, FLAIR and T1-pre together (training_scripts/brain_sizes.py: FLAIR 126.5-177.5, median 141.8;
# T1-pre 127.3-178.2, median 142.0).
TRAINING_SECTION_PX = (126.5, 178.2)
TRAINING_MEDIAN_SECTION_PX = 142.0


def largest_section_px(brain: np.ndarray) -> float:
    """Square root of the area of the largest axial brain section, in pixels: a size in-plane that does not depend
    on how many slices the scan has or how the head is turned within a slice. ``brain`` is (H, W) or (H, W, Z)."""
    brain = np.asarray(brain, dtype=bool)
    areas = brain.reshape(-1, brain.shape[2]).sum(axis=0) if brain.ndim == 3 else [brain.sum()]
    return float(np.sqrt(np.max(areas)))


def advised_zoom(brain: np.ndarray) -> float | None:
    """The in-plane factor that brings a brain smaller than every training brain of the shipped models to their
    median size; None when it is as large as theirs (or there is no brain)."""
    return _zoom_for(largest_section_px(brain))


def _zoom_for(size: float) -> float | None:
    return TRAINING_MEDIAN_SECTION_PX / size if 0 < size < TRAINING_SECTION_PX[0] else None


def small_brain_note(brain: np.ndarray) -> str | None:
    """A note when the brain is smaller in-plane than every training brain of the shipped models; None otherwise.
    It names what resamples: the Localize widget's button and the CLI's option, with the factor "auto" in both."""
    size = largest_section_px(brain)
    factor = _zoom_for(size)
    if factor is None:
        return None
    smallest, largest = TRAINING_SECTION_PX
    return (f"the brain is small for the shipped models: its largest axial section is {size:.0f} pixels across (square root of "
            f"its area), theirs were {smallest:.0f}-{largest:.0f}; if the whole brain is in the scan, resample its slices in-plane "
            f"by about x{factor:.1f} before segmenting (a slab of the brain's top or bottom is small anyway; "
            f"Resample in-plane in the Localize widget, or inpaint-seg segment --in-plane-zoom auto, does it)")
