"""How the default's Dice depends on the brain's size in pixels: each scan resampled in-plane by a factor,
segmented by ``inpaint-seg segment`` as a user would, its labels taken back to the scan's grid (nearest) and
scored against the mask. The numbers behind :mod:`napari_inpaint_seg.brain_size` (docs/robustness.md).

    python training_scripts/resampled_scans.py --data ../shared/data/lgg --modality flair \
        --patients TCGA_CS_4943_20000902,TCGA_DU_5849_19950405,TCGA_HT_7602_19951103,TCGA_HT_8106_19970727 \
        --factors 0.5,0.7,1,1.5,2 --json runs/resampled/flair_val4.json

A factor may be a chain, ``0.5*2``: resampled by 0.5 (a small brain), then by 2 (what the tool's note advises for
it); ``0.5*auto`` leaves the second step to the CLI's ``--in-plane-zoom auto``. Use validation patients: this
measures the tool, it chooses nothing. Resampling from the 256x256 slices
adds no detail, so a factor above 1 imitates a larger brain, not a sharper scan.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from napari_inpaint_seg.evaluation import command_line_labels, score_variants
from napari_inpaint_seg.in_plane import labels_to_grid
from napari_inpaint_seg.models.config import MODALITIES


def segment_resampled(scan: nib.Nifti1Image, modality: str, chain: list[str]) -> np.ndarray:
    """The CLI's labels of ``scan`` resampled in-plane by each factor of ``chain`` in turn (linear), on the scan's own
    grid; a last link "auto" leaves the rest to the CLI (``--in-plane-zoom auto``)."""
    data = resampled = np.asarray(scan.dataobj, dtype=np.float32)
    cli_zoom = ["--in-plane-zoom", "auto"] if chain[-1] == "auto" else []
    for step in map(float, chain[:-1] if cli_zoom else chain):
        resampled = ndimage.zoom(resampled, (step, step, 1), order=1) if step != 1 else resampled
    factor = resampled.shape[0] / data.shape[0]
    labels = command_line_labels(nib.Nifti1Image(resampled, np.diag([1 / factor, 1 / factor, 1, 1])), modality, *cli_zoom)
    return labels_to_grid(labels, data.shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder in the LGG layout")
    parser.add_argument("--patients", required=True, help="comma-separated patient ids")
    parser.add_argument("--modality", choices=MODALITIES, required=True)
    parser.add_argument("--factors", default="0.5,0.7,1,1.5,2", help="in-plane resampling factors, or chains such as 0.5*2 or 0.5*auto (default: %(default)s)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    score_variants(args.data, args.patients.split(","), args.modality, args.factors.split(","),
                   lambda scan, factor: segment_resampled(scan, args.modality, factor.split("*")), args.json)


if __name__ == "__main__":
    main()
