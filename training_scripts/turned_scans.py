"""How the default's Dice depends on how a scan's slices lie: each LGG scan stored with the affine of its true
orientation (rows to posterior, columns to the patient's left: P, L, S), then stored turned to R, A, S as many
converters write it, segmented by ``inpaint-seg segment`` as a user would, labels brought back to the LGG order and
scored against the mask. The numbers behind :mod:`napari_inpaint_seg.orientation` (docs/robustness.md).

    python training_scripts/turned_scans.py --data ../shared/data/lgg --modality flair --patients-file splits/lgg_val.txt \
        --json runs/turned/flair_val.json

"as trained" and "turned, true affine" agree when the tool turns a scan back exactly; "turned, no affine" (the
turned voxels with the identity, which says nothing) is what a turned scan gets when its affine cannot tell. Use
validation patients: this measures the tool, it chooses nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_inpaint_seg.evaluation import command_line_labels, score_variants
from napari_inpaint_seg.models.config import MODALITIES
from napari_inpaint_seg.training.data import read_patient_list

# The LGG voxels' true orientation (their files' identity affine does not say it): P, L, S, 1 mm, away from the origin.
TRUE_AFFINE = np.array([[0, -1.0, 0, 120], [-1.0, 0, 0, 120], [0, 0, 1.0, -40], [0, 0, 0, 1]])
WAYS = ("as trained", "turned, true affine", "turned, no affine")


def turned(image: nib.Nifti1Image, codes: str) -> nib.Nifti1Image:
    return image.as_reoriented(nib.orientations.ornt_transform(nib.io_orientation(image.affine), nib.orientations.axcodes2ornt(codes)))


def segment_stored(data: np.ndarray, modality: str, way: str) -> np.ndarray:
    """The CLI's labels of ``data`` (LGG voxel order) stored the ``way`` named, in LGG voxel order."""
    image = nib.Nifti1Image(data, TRUE_AFFINE)
    stored = image if way == "as trained" else turned(image, "RAS")
    if way == "turned, no affine":
        stored = nib.Nifti1Image(np.asarray(stored.dataobj), np.eye(4))
    labels = command_line_labels(stored, modality)
    if way == "as trained":
        return labels
    back = turned(nib.Nifti1Image(labels.astype(np.uint8), turned(image, "RAS").affine), "PLS")  # the voxels where they were read
    return np.asarray(back.dataobj) > 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder in the LGG layout")
    parser.add_argument("--patients-file", type=Path, required=True, help="one patient id per line")
    parser.add_argument("--modality", choices=MODALITIES, required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    score_variants(args.data, read_patient_list(args.patients_file), args.modality, list(WAYS),
                   lambda scan, way: segment_stored(np.asarray(scan.dataobj, dtype=np.float32), args.modality, way), args.json)


if __name__ == "__main__":
    main()
