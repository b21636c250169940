"""The no-tumour decision of a model of one's own, calibrated on healthy slices alone.

The decision asks how far a slice's top segment stands out from the brain's median heat (its contrast,
:attr:`~.pipeline.SliceResult.contrast`). How far a top segment stands out on a *healthy* slice depends on the model:
a second training of the shipped FLAIR model, differing only in its seed, gave healthy slices a median contrast of 4.2
against 2.9, and with the contrasts tuned on the shipped model it labelled 29 % of the healthy validation slices
(docs/results.md). A model's decision is therefore the modality's tuned one scaled by the median contrast of its
healthy slices over the shipped model's. Healthy slices are all that needs: the pack the model was trained on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from .errors import InputError
from .localizer import localize, step_for_window
from .pipeline import Model, brain_needed, resolve_polarity, segment_image
from .segmentation import DEFAULT_SELECTIONS, FelzenszwalbParams
from .training.data import SliceSet

# The median contrast of the shipped gamma-64 models (the ones DEFAULT_SELECTIONS was tuned on) over 200 slices of
# their training packs, measured with training_scripts/calibrate_decision.py (docs/training.md). Remeasure when the
# modality's default selection or superpixels change, since the contrast depends on them.
REFERENCE_HEALTHY_CONTRAST = {"flair": 2.852, "t1": 1.247}
CALIBRATION_SLICES = 200


def healthy_contrasts(
    slices: SliceSet, model: Model, modality: str, *, count: int = CALIBRATION_SLICES, seed: int = 0, device: str = "cpu",
    progress: Callable[[int, int], object] | None = None,
) -> np.ndarray:
    """The contrast of the top segment, under ``modality``'s tuned selection with every slice answered, on up to
    ``count`` of ``slices`` drawn at random (``seed``) from those with enough brain for a window."""
    generator, config = model
    if modality not in DEFAULT_SELECTIONS:
        raise InputError(f"no tuned decision to calibrate for modality {modality!r}")
    if slices.shows_tumour:
        raise InputError(f"the slices show tumours ({slices.description}): calibrate on tumour-free slices, a pack made without --tumour-margin")
    if slices.modality and slices.modality != modality:
        raise InputError(f"the slices are {slices.modality} ({slices.description}), the model is {modality}")
    usable = [i for i, brain in enumerate(slices.brains) if brain.sum() >= brain_needed(config.gamma)]
    if not usable:
        raise InputError(f"none of the {len(slices)} slices has enough brain for one {config.gamma}x{config.gamma} window")
    chosen = np.random.default_rng(seed).choice(usable, size=min(count, len(usable)), replace=False)
    selection = replace(DEFAULT_SELECTIONS[modality], min_contrast=0.0, grow_contrast=None)
    polarity, step = resolve_polarity("auto", modality), step_for_window(config.gamma)
    contrasts = []
    for done, i in enumerate(chosen, start=1):
        image, brain = slices.images[i], slices.brains[i]
        heatmap = localize(generator, config, image, brain, step=step, device=device, polarity=polarity)
        contrasts.append(segment_image(0, image, brain, heatmap, FelzenszwalbParams(), selection).contrast)
        if progress is not None:
            progress(done, len(chosen))
    return np.asarray(contrasts, dtype=float)


def calibrated_decision(contrasts: np.ndarray, modality: str, source: str) -> dict:
    """The modality's tuned decision scaled to a model whose healthy slices' contrasts are ``contrasts``, as stored
    with the model (:attr:`~.models.config.ModelConfig.decision`)."""
    finite = contrasts[np.isfinite(contrasts)]
    if finite.size == 0:
        raise InputError("no healthy slice gave a finite contrast: the model's heat is empty on them")
    median = float(np.median(finite))
    if median <= 0:
        raise InputError("the model's heat does not stand out anywhere on the healthy slices (median contrast 0); nothing to scale by")
    tuned = DEFAULT_SELECTIONS[modality]
    scale = median / REFERENCE_HEALTHY_CONTRAST[modality]
    return {
        "min_contrast": round(tuned.min_contrast * scale, 3),
        "grow_contrast": None if tuned.grow_contrast is None else round(tuned.grow_contrast * scale, 3),
        "healthy_median_contrast": round(median, 4),
        "healthy_slices": int(finite.size),
        "calibrated_on": source,
    }
