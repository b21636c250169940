"""How large, in pixels, the brains were that the shipped models learnt from: the numbers behind
:data:`napari_inpaint_seg.brain_size.TRAINING_SECTION_PX`.

    python training_scripts/brain_sizes.py --lgg ../shared/data/lgg --patients splits/lgg_train.txt --modality flair
    python training_scripts/brain_sizes.py --lgg ../shared/data/lgg --patients splits/lgg_train_t1.txt --modality t1

Prints, over the patients, the smallest, median and largest size of each scan's largest axial brain section
(:func:`~napari_inpaint_seg.brain_size.largest_section_px`), with the deepbet masks that training used
(cached in ``--cache`` as ``pack_slices.py`` and ``train.py`` cache them).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from napari_inpaint_seg.brain_size import largest_section_px
from napari_inpaint_seg.models.config import MODALITIES
from napari_inpaint_seg.training.arguments import input_errors_exit
from napari_inpaint_seg.training.data import cached_brain_mask, lgg_patient_volume_paths, read_patient_list


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lgg", type=Path, required=True, help="folder in the LGG layout")
    parser.add_argument("--patients", type=Path, required=True, help="the training patients, one id per line")
    parser.add_argument("--modality", choices=MODALITIES, required=True)
    parser.add_argument("--cache", type=Path, default=Path(".cache/brain"), help="where brain masks are cached (default: %(default)s)")
    args = parser.parse_args(argv)
    with input_errors_exit(parser):
        sizes = {patient: largest_section_px(cached_brain_mask(lgg_patient_volume_paths(args.lgg, patient, args.modality)[0], args.cache))
                 for patient in read_patient_list(args.patients)}
    values = np.array(list(sizes.values()))
    print(json.dumps({"modality": args.modality, "patients": len(values), "smallest_px": round(float(values.min()), 1),
                      "median_px": round(float(np.median(values)), 1), "largest_px": round(float(values.max()), 1)}))


if __name__ == "__main__":
    main()
