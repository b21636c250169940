"""Gather healthy training slices (brain-extracted, normalised) from any mix of sources into one .npz pack.

Example (the shipped models' data; T1 uses the patients whose T1-pre is real):
    python training_scripts/pack_slices.py --lgg ../shared/data/lgg --patients splits/lgg_train.txt \
        --modality flair --out .cache/slices_flair.npz
    python training_scripts/pack_slices.py --lgg ../shared/data/lgg --patients splits/lgg_train_t1.txt \
        --modality t1 --out .cache/slices_t1.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_inpaint_seg.errors import InputError
from napari_inpaint_seg.models.config import MODALITIES
from napari_inpaint_seg.training.arguments import add_slice_source_arguments, input_errors_exit
from napari_inpaint_seg.training.data import gather_slices, save_slice_pack


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pack_slices.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_slice_source_arguments(parser)
    parser.add_argument("--modality", choices=MODALITIES, required=True, help="modality of the slices, recorded in the pack")
    parser.add_argument("--out", type=Path, required=True, help="the pack; .npz is appended when the name lacks it")
    return parser


def pack_path(out: Path) -> Path:
    """``out`` with the .npz suffix the pack will be read back by, decided before minutes of gathering."""
    return out if out.suffix == ".npz" else out.with_name(out.name + ".npz")


def run(args: argparse.Namespace) -> None:
    out = pack_path(args.out)
    slices = gather_slices(args.modality, lgg=args.lgg, patients=args.patients, images=args.images, volumes=args.volumes, cache_dir=args.cache, tumour_margin=args.tumour_margin)
    if not len(slices):
        raise InputError("no slices found; give --lgg with --patients, --images or --volumes")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_slice_pack(out, slices)
    print(f"{len(slices)} slices -> {out} ({out.stat().st_size / 1e6:.1f} MB): {slices.description}")


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    with input_errors_exit(parser):
        run(args)


if __name__ == "__main__":
    main()
