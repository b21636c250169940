"""Slices segmented in worker threads (pipeline.segment_volume, while the next is localised; answer_slices) give
the answers of one slice after the other, in the order asked, and a caller that stops early leaves little running."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
from conftest import TOY_AFFINE, toy_volume

from napari_inpaint_seg import pipeline
from napari_inpaint_seg.io import Scan
from napari_inpaint_seg.localizer import final
from napari_inpaint_seg.segmentation import default_selection


@pytest.fixture
def prepared():
    volume = np.concatenate([toy_volume(seed=0), toy_volume(seed=1)], axis=2)  # 8 slices
    return pipeline.prepare_scan(Scan(volume, TOY_AFFINE, None), skull_stripped=True)


def one_after_the_other(prepared, models, indices, selection) -> np.ndarray:
    labels = np.zeros(prepared.image.shape, np.uint8)
    answers = {index: pipeline.segment_slice(prepared, index, final(pipeline.localize_slice(prepared, index, models)), selection=selection).summary()
               for index in indices}
    for index, label in pipeline.scan_labels(prepared, answers, selection).items():
        labels[:, :, index] = label
    return labels


@pytest.mark.parametrize("workers", [1, 3])
def test_segment_volume_labels_are_those_of_one_slice_after_the_other(prepared, tiny_generator, tiny_config, monkeypatch, workers):
    monkeypatch.setattr(pipeline, "SEGMENTATION_WORKERS", workers)
    # The random tiny model's contrasts on these slices lie between 1.10 and 1.23: these thresholds label some
    # slices on their own, some only beside a labelled one, and leave the rest empty.
    selection = replace(default_selection("flair"), min_contrast=1.2, grow_contrast=1.17)
    models, indices = [(tiny_generator, tiny_config)], [5, 0, 7, 2, 1, 6]
    progress = list(pipeline.segment_volume(prepared, models, indices, selection=selection))
    expected = one_after_the_other(prepared, models, indices, selection)
    labelled = expected.any(axis=(0, 1))
    assert 0 < labelled.sum() < len(indices), "some slices labelled and some not: the comparison means something"
    assert [update.slices_done for update in progress] == list(range(1, len(indices) + 1))
    np.testing.assert_array_equal(progress[-1].labels, expected)


def test_stopping_early_shuts_the_workers_down(prepared, tiny_generator, tiny_config, monkeypatch):
    created = []

    class Recorded(pipeline.ThreadPoolExecutor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            created.append(self)

    monkeypatch.setattr(pipeline, "ThreadPoolExecutor", Recorded)
    progress = pipeline.segment_volume(prepared, [(tiny_generator, tiny_config)], selection=default_selection("flair"))
    assert next(progress).slices_done == 1
    progress.close()
    assert len(created) == 1 and created[0]._shutdown


def test_answer_slices_keeps_the_order_and_hands_out_only_a_few_slices_ahead(prepared, monkeypatch):
    monkeypatch.setattr(pipeline, "SEGMENTATION_WORKERS", 2)
    started = []

    def recorded(prepared, index, heatmap, params, selection):
        started.append(index)
        return index * 10

    monkeypatch.setattr(pipeline, "slice_answer", recorded)
    heatmaps = {index: prepared.image[:, :, index % 8] for index in reversed(range(20))}
    answers = pipeline.answer_slices(prepared, heatmaps, None, None)
    assert next(answers) == (19, 190)
    time.sleep(0.2)  # a cancelled napari worker stops iterating without closing the generator
    assert len(started) <= 4, "only 2 x SEGMENTATION_WORKERS slices are handed out ahead"
    assert list(answers) == [(index, index * 10) for index in reversed(range(19))]
