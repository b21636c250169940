"""Test-time flipping, measured: the heat of each slice mirrored left-right, and its mean with the plain heat.

The generator is not mirror-symmetric, so the heat of a mirrored slice, mirrored back, is a second estimate of the
same inpainting error: its noise in healthy tissue partly differs, a lesion's error does not. Whether averaging the
two helps the selection is an empirical question; this script makes the heat caches that answer it.

    # 1. the plain heat, as Table 1 makes it
    inpaint-seg evaluate --data ../shared/data/lgg --patients splits/lgg_val.txt --modality flair --gamma 64 \
        --whole-volumes --json runs/flair_val.json --heatmap-cache .cache/plain.npz
    # 2. the mirrored heat of the same slices, then the mean of both (--mirrored-weight 1: the mirrored heat alone),
    #    saved with the plain cache's key
    python training_scripts/flipped_heat.py localise --data ../shared/data/lgg --patients splits/lgg_val.txt \
        --modality flair --gamma 64 --out .cache/mirrored.npz
    python training_scripts/flipped_heat.py average --plain .cache/plain.npz --mirrored .cache/mirrored.npz --out .cache/mean.npz
    # 3. score any of the three with the default settings (tune_selection.py --cache ...)
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from napari_inpaint_seg.evaluation import (
    EvaluatedSlice,
    cache_key,
    read_heatmap_cache_unchecked,
    save_heatmap_cache,
    slice_heat,
    volume_slice_indices,
)
from napari_inpaint_seg.io import read_scan
from napari_inpaint_seg.models.checkpoint import load_model
from napari_inpaint_seg.pipeline import PreparedScan, prepare_scan, resolve_polarity
from napari_inpaint_seg.training.arguments import input_errors_exit
from napari_inpaint_seg.training.data import lgg_patient_volume_paths, read_patient_list


def mirrored(prepared: PreparedScan) -> PreparedScan:
    """The scan mirrored left-right (the columns of the training orientation), brain mask included."""
    return replace(prepared, image=np.ascontiguousarray(prepared.image[:, ::-1]), brain=np.ascontiguousarray(prepared.brain[:, ::-1]))


def localise(args: argparse.Namespace) -> None:
    """The mirrored heat, mirrored back, of every slice ``inpaint-seg evaluate --whole-volumes`` localises."""
    model = load_model(args.model, args.modality, args.gamma)
    polarity = resolve_polarity("auto", args.modality)
    rows = []
    for patient in read_patient_list(args.patients):
        scan_path, mask_path = lgg_patient_volume_paths(args.data, patient, args.modality)
        prepared = prepare_scan(read_scan(scan_path))
        tumour = read_scan(mask_path).data > 0
        flipped = mirrored(prepared)
        indices = volume_slice_indices(tumour, prepared.brain)
        for index in indices:
            began = time.perf_counter()
            heat = slice_heat(flipped, int(index), [model], polarity=polarity)[:, ::-1]
            rows.append(EvaluatedSlice(patient, int(index), prepared.image[:, :, index], prepared.brain[:, :, index], tumour[:, :, index],
                                       np.ascontiguousarray(heat), time.perf_counter() - began))
        print(f"{patient}: {len(indices)} slices", flush=True)
    key = {"mirrored": True, "patients": read_patient_list(args.patients), "modality": args.modality, "gamma": args.gamma, "whole_volumes": True}
    save_heatmap_cache(args.out, rows, [], key)


def average(args: argparse.Namespace) -> None:
    """The plain and the mirrored heat averaged slice by slice, ``--mirrored-weight`` the mirrored one's weight (1:
    the mirrored heat alone), saved with the plain cache's key so that the tuning script reads it as such."""
    plain, quality = read_heatmap_cache_unchecked(args.plain)
    flipped, _ = read_heatmap_cache_unchecked(args.mirrored)
    if [(a.patient, a.index) for a in plain] != [(b.patient, b.index) for b in flipped]:
        raise SystemExit("the two caches hold different slices")
    rows: list[EvaluatedSlice] = [
        replace(a, heatmap=((1 - args.mirrored_weight) * a.heatmap + args.mirrored_weight * b.heatmap).astype(np.float32), seconds=a.seconds + b.seconds) for a, b in zip(plain, flipped)
    ]
    save_heatmap_cache(args.out, rows, quality, json.loads(cache_key(args.plain)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("localise", help="the mirrored heat of a cache's slices")
    one.add_argument("--data", type=Path, required=True)
    one.add_argument("--patients", type=Path, required=True)
    one.add_argument("--modality", choices=["t1", "flair"], required=True)
    one.add_argument("--gamma", type=int, default=64)
    one.add_argument("--model", type=Path)
    one.add_argument("--out", type=Path, required=True)
    both = commands.add_parser("average", help="the mean of a plain and a mirrored cache")
    both.add_argument("--plain", type=Path, required=True)
    both.add_argument("--mirrored", type=Path, required=True)
    both.add_argument("--mirrored-weight", type=float, default=0.5, help="the mirrored heat's weight (default 0.5: the mean; 1: it alone)")
    both.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with input_errors_exit(parser):
        (localise if args.command == "localise" else average)(args)


if __name__ == "__main__":
    main()
