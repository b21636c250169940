"""Where along the scan the generator's training slices lie, against where the tumours lie.

    python training_scripts/slice_positions.py --lgg ../shared/data/lgg --patients splits/lgg_train_t1.txt

The shipped models learnt from the tumour-free slices of the training patients. A low-grade glioma sits mostly in
the middle of the scan, so those slices come mostly from its ends: the generator sees little of the anatomy it
must inpaint around a tumour. Prints, as one JSON object, the count of tumour-free slices and of tumour slices (at
least ``--min-tumour`` mask pixels) in each of ``--bins`` equal parts of the slice axis (first slice 0, last 1).
Slices with a few tumour pixels, fewer than ``--min-tumour``, are in neither count.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from napari_inpaint_seg.evaluation import MIN_TUMOUR_PIXELS
from napari_inpaint_seg.io import read_scan
from napari_inpaint_seg.training.arguments import input_errors_exit
from napari_inpaint_seg.training.data import lgg_patient_volume_paths, read_patient_list


def positions(mask: np.ndarray, min_tumour: int) -> tuple[list[float], list[float]]:
    """The relative positions (0 to 1 along the last axis) of a mask's tumour-free and tumour slices."""
    counts = mask.reshape(-1, mask.shape[-1]).sum(axis=0)
    where = np.arange(len(counts)) / max(len(counts) - 1, 1)
    return where[counts == 0].tolist(), where[counts >= min_tumour].tolist()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lgg", type=Path, required=True, help="folder in the LGG layout")
    parser.add_argument("--patients", type=Path, required=True, help="the training patients, one id per line")
    parser.add_argument("--bins", type=int, default=5, help="equal parts of the slice axis (default: %(default)s)")
    parser.add_argument("--min-tumour", type=int, default=MIN_TUMOUR_PIXELS, help="mask pixels a tumour slice needs (default: %(default)s, as scored)")
    args = parser.parse_args(argv)
    if args.bins < 1:
        parser.error(f"--bins must be at least 1, got {args.bins}")
    free, tumour = [], []
    with input_errors_exit(parser):
        for patient in read_patient_list(args.patients):
            mask = read_scan(lgg_patient_volume_paths(args.lgg, patient, "flair")[1]).data > 0
            patient_free, patient_tumour = positions(mask, args.min_tumour)
            free += patient_free
            tumour += patient_tumour
    edges = np.linspace(0, 1, args.bins + 1)
    print(json.dumps({"bins": [[round(a, 3), round(b, 3)] for a, b in zip(edges[:-1], edges[1:])],
                      "tumour_free_slices": np.histogram(free, edges)[0].tolist(), "tumour_slices": np.histogram(tumour, edges)[0].tolist()}))


if __name__ == "__main__":
    main()
