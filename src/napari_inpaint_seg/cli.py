"""``inpaint-seg``: segment scans and reproduce the paper's evaluation from the command line.

Every problem with the user's input ends as one line on stderr and exit status 2, never a traceback, and
no output file is left behind half-written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .errors import InputError
from .localizer import DEFAULT_STEP
from .segmentation import DEFAULT_MIN_SIZE, DEFAULT_SCALE, DEFAULT_SIGMA, FelzenszwalbParams

EXIT_INPUT_ERROR = 2


def parse_slices(text: str) -> list[int]:
    """``"3,7,12"`` -> [3, 7, 12]; ranges like ``"10-14"`` are accepted too."""
    slices: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                first, last = part.split("-", 1)
                slices.extend(range(int(first), int(last) + 1))
            elif part:
                slices.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected slice numbers like 3,7,12 or 10-14, got {text!r}") from None
    return slices


def pick_device(name: str) -> str:
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but no CUDA GPU is available")
    return name


def add_method_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--modality", choices=["t1", "flair"], required=True, help="t1 (T1-pre) or flair")
    parser.add_argument("--gamma", type=int, default=32, help="window side in pixels (default 32)")
    parser.add_argument("--step", type=int, default=DEFAULT_STEP, help="window stride k (default 4)")
    parser.add_argument("--model", type=Path, help="a .safetensors checkpoint instead of the shipped model")
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE, help="Felzenszwalb scale (default 75)")
    parser.add_argument("--sigma", type=float, default=DEFAULT_SIGMA, help="Felzenszwalb sigma (default 0.8)")
    parser.add_argument("--min-size", type=int, default=DEFAULT_MIN_SIZE, help="Felzenszwalb min_size (default 20)")
    parser.add_argument("--reference", action="store_true", help="the paper's literal (slow) localiser instead of the fast one")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inpaint-seg", description="Unsupervised brain-tumour segmentation by adversarial inpainting.")
    commands = parser.add_subparsers(dest="command", required=True)

    segment = commands.add_parser("segment", help="segment axial slices of a scan and write a labels volume")
    segment.add_argument("scan", type=Path, help="NIfTI scan (.nii, .nii.gz) or 2D image")
    add_method_arguments(segment)
    segment.add_argument("--slices", type=parse_slices, help="slices to segment (last array axis), e.g. 3,7,12; default all")
    segment.add_argument("--out", type=Path, required=True, help="labels file to write (.nii.gz)")
    segment.add_argument("--heatmap-out", type=Path, help="also write the heatmap (.nii.gz)")
    segment.add_argument("--force", action="store_true", help="overwrite existing output files")

    evaluate = commands.add_parser("evaluate", help="reproduce the paper's Table 1 on LGG-layout data")
    evaluate.add_argument("--data", type=Path, required=True, help="folder with PATIENT_{t1pre,flair,mask}.nii.gz")
    evaluate.add_argument("--patients", type=Path, required=True, help="text file with one patient id per line")
    add_method_arguments(evaluate)
    evaluate.add_argument("--json", type=Path, required=True, help="where to write the results")
    evaluate.add_argument("--force", action="store_true", help="overwrite an existing JSON file")

    commands.add_parser("models", help="list the models shipped with the package")
    return parser


def check_output(path: Path | None, force: bool) -> None:
    """Fail before any work if an output could not be written, so no time is wasted and nothing is clobbered."""
    if path is None:
        return
    if path.exists() and not force:
        raise InputError(f"{path}: file exists; pass --force to overwrite it")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: output folder does not exist")
    import os

    if not os.access(path.parent, os.W_OK):
        raise InputError(f"{path.parent}: output folder is not writable")


def run_segment(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from .io import read_scan, write_float_volume, write_labels
    from .models.checkpoint import load_model
    from .pipeline import prepare_scan, segment_volume

    for output in (args.out, args.heatmap_out):
        check_output(output, args.force)
    scan = read_scan(args.scan)
    device = pick_device(args.device)
    generator, config = load_model(args.model, args.modality, args.gamma, device)
    prepared = prepare_scan(scan, device=device)
    params = FelzenszwalbParams(args.scale, args.sigma, args.min_size)
    progress = segment_volume(prepared, generator, config, args.slices, step=args.step, params=params, fast=not args.reference, device=device)
    last = None
    for last in tqdm(progress, total=len(args.slices) if args.slices else prepared.n_slices, desc="segment", unit="slice"):
        pass
    labels, heatmap = last.labels, last.heatmap
    if scan.data.ndim == 2:
        labels, heatmap = labels[:, :, 0], heatmap[:, :, 0]
    write_labels(args.out, labels, scan, force=args.force)
    if args.heatmap_out:
        write_float_volume(args.heatmap_out, heatmap, scan, force=args.force)
    print(f"{args.out}: {int(labels.sum())} tumour voxels in {int(np.any(labels, axis=(0, 1)).sum()) if labels.ndim == 3 else int(labels.any())} slices")


def run_evaluate(args: argparse.Namespace) -> None:
    from .evaluation import evaluate_lgg, read_patient_list
    from .io import write_atomically
    from .models.checkpoint import load_model

    check_output(args.json, args.force)
    if not args.patients.is_file():
        raise InputError(f"{args.patients}: no such patient list")
    device = pick_device(args.device)
    generator, config = load_model(args.model, args.modality, args.gamma, device)
    params = FelzenszwalbParams(args.scale, args.sigma, args.min_size)
    results = evaluate_lgg(
        args.data, read_patient_list(args.patients), args.modality, generator, config, step=args.step, params=params, fast=not args.reference, device=device,
        report=lambda line: print(line, file=sys.stderr),
    )
    write_atomically(args.json, lambda tmp: Path(tmp).write_text(json.dumps(results, indent=1)))
    print(f"{args.modality} gamma={config.gamma}: Dice {results['dice_mean']:.3f} ± {results['dice_sd']:.3f} on {results['n_tumour_slices']} slices; "
          f"PSNR {results['psnr_mean']:.2f}, SSIM {results['ssim_mean']:.3f}")


def run_models(_: argparse.Namespace) -> None:
    from .models.checkpoint import load_generator, shipped_model_path, shipped_models

    for modality, gamma in shipped_models():
        _, config = load_generator(shipped_model_path(modality, gamma))
        print(f"{modality} gamma={gamma}: {config.iterations} iterations, context {config.context}, data: {config.data}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"segment": run_segment, "evaluate": run_evaluate, "models": run_models}
    try:
        handlers[args.command](args)
    except InputError as exc:
        print(f"inpaint-seg: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print("inpaint-seg: interrupted; nothing was written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
