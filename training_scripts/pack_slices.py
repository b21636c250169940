"""Gather healthy training slices (brain-extracted, normalised) from any mix of sources into one .npz pack.

Example (the shipped models' data):
    python training_scripts/pack_slices.py --lgg ../shared/data/lgg --patients splits/lgg_train.txt \
        --modality flair --out .cache/slices_flair.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_inpaint_seg.training.data import SliceSet, image_folder_slices, lgg_tumour_free_slices, nifti_folder_slices, save_slice_pack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lgg", type=Path, help="folder in the LGG layout (PATIENT_t1pre/flair/mask.nii.gz)")
    parser.add_argument("--patients", type=Path, help="text file, one LGG patient id per line")
    parser.add_argument("--images", type=Path, help="folder of skull-stripped healthy 2D slices (PNG/JPEG/TIFF)")
    parser.add_argument("--volumes", type=Path, help="folder of healthy NIfTI volumes (brain-extracted here)")
    parser.add_argument("--modality", choices=["t1", "flair"], required=True)
    parser.add_argument("--cache", type=Path, default=Path(".cache/brain"), help="where brain masks are cached")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    slices = SliceSet([], [])
    if args.lgg:
        if not args.patients:
            parser.error("--lgg needs --patients")
        patients = [line.strip() for line in args.patients.read_text().splitlines() if line.strip()]
        slices.extend(lgg_tumour_free_slices(args.lgg, patients, args.modality, args.cache))
    if args.images:
        slices.extend(image_folder_slices(args.images))
    if args.volumes:
        slices.extend(nifti_folder_slices(args.volumes, args.cache))
    if not len(slices):
        parser.error("no slices found; give --lgg/--patients, --images or --volumes")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_slice_pack(args.out, slices)
    print(f"{len(slices)} slices -> {args.out} ({args.out.stat().st_size / 1e6:.1f} MB): {slices.description}")


if __name__ == "__main__":
    main()
