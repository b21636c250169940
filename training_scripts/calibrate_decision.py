"""Calibrate the no-tumour decision for a model of one's own and store it in the model's file.

    python training_scripts/calibrate_decision.py --model runs/flair32/generator.safetensors --pack .cache/slices_flair.npz

The pack must hold healthy slices of the model's modality (the one it was trained on will do; not one made with
--tumour-margin). The model's heat is computed on --slices of them, and the modality's tuned decision is scaled by the
median contrast of their top segments over the shipped model's (napari_inpaint_seg.calibration). inpaint-seg segment,
inpaint-seg evaluate and the plugin's Label all slices then use it; --min-contrast still overrides it.

Without --model, the shipped model of --modality and --gamma is measured (its reference median) and nothing is
written: the shipped models' decision is the modality's tuned one. With --contrasts MIN[,GROW] (for example tuned with
tune_selection.py on scans with known labels), those are stored instead and nothing is measured.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_inpaint_seg.calibration import CALIBRATION_SLICES, calibrated_decision, healthy_contrasts
from napari_inpaint_seg.device import DEVICES, pick_device
from napari_inpaint_seg.errors import InputError
from napari_inpaint_seg.models.checkpoint import load_model, store_decision
from napari_inpaint_seg.models.config import DEFAULT_GAMMA, MODALITIES, ModelConfig, checkpoint_config, uses_shipped_model
from napari_inpaint_seg.training.arguments import float_list, input_errors_exit, positive_int
from napari_inpaint_seg.training.data import load_slice_pack


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="calibrate_decision.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="the model (.safetensors) to calibrate and write to; without it, the shipped model is measured")
    parser.add_argument("--pack", type=Path, help="healthy slices of the model's modality (.npz made by pack_slices.py)")
    parser.add_argument("--contrasts", type=float_list, metavar="MIN[,GROW]", help="store these contrasts instead of calibrating (needs --model)")
    parser.add_argument("--modality", choices=MODALITIES, help="the shipped model's (without --model; a model states its own)")
    parser.add_argument("--gamma", type=positive_int, default=DEFAULT_GAMMA, help="the shipped model's window (without --model; default: %(default)s)")
    parser.add_argument("--slices", type=positive_int, default=CALIBRATION_SLICES, help="healthy slices to measure (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="which slices are drawn (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="print the decision without writing it to the model")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="auto: a GPU when there is one (default: %(default)s)")
    return parser


def run(args: argparse.Namespace) -> dict:
    """Measure, print and (unless told not to, or the model is shipped) store the decision; returns it."""
    stated = checkpoint_config(args.model) if args.model is not None else None
    modality = stated.modality if stated else args.modality
    if stated and args.modality not in (None, modality):
        raise InputError(f"{args.model} is a {modality} model, not {args.modality}")
    write = args.model is not None and not args.dry_run and not uses_shipped_model([args.model])
    decision = given_decision(args.contrasts) if args.contrasts else measured_decision(args, modality, stated)
    print(f"decision: no tumour below contrast {decision['min_contrast']}" + (f" ({decision['grow_contrast']} beside a labelled slice)" if decision["grow_contrast"] is not None else ""))
    if write:
        store_decision(args.model, decision)
        print(f"stored in {args.model}")
    elif not args.dry_run:  # a shipped model, measured for its reference median
        print("not stored: a shipped model's decision is the modality's tuned one")
    return decision


def given_decision(contrasts: list[float]) -> dict:
    """The decision as given; checked when stored (:func:`~napari_inpaint_seg.models.config.decision_problems`)."""
    if len(contrasts) > 2:
        raise InputError(f"--contrasts takes MIN or MIN,GROW, got {len(contrasts)} numbers")
    return {"min_contrast": contrasts[0], "grow_contrast": contrasts[1] if len(contrasts) == 2 else None, "calibrated_on": "given with --contrasts"}


def measured_decision(args: argparse.Namespace, modality: str, stated: ModelConfig | None) -> dict:
    """The decision calibrated on ``args.pack`` (:mod:`napari_inpaint_seg.calibration`), its median printed."""
    slices = load_slice_pack(args.pack)
    device = pick_device(args.device)
    generator, config = load_model(args.model, modality, stated.gamma if stated else args.gamma, device)

    def progress(done: int, total: int) -> None:
        print(f"\rslice {done}/{total}", end="", file=sys.stderr, flush=True)

    contrasts = healthy_contrasts(slices, (generator, config), modality, count=args.slices, seed=args.seed, device=device, progress=progress)
    print(file=sys.stderr)
    decision = calibrated_decision(contrasts, modality, f"{args.pack.name} ({slices.description}), seed {args.seed}")
    print(f"healthy slices: {decision['healthy_slices']}, median contrast {decision['healthy_median_contrast']}")
    return decision


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.model is None and args.modality is None:
        parser.error("give --model, or --modality to measure the shipped model")
    if args.contrasts is None and args.pack is None:
        parser.error("give --pack (healthy slices to calibrate on), or --contrasts to store")
    if args.contrasts is not None and args.model is None:
        parser.error("--contrasts are stored in a model of one's own: give --model")
    with input_errors_exit(parser):
        run(args)


if __name__ == "__main__":
    main()
