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

from .cohort import SUMMARY_NAME
from .device import DEVICES, pick_device
from .errors import InputError
from .models.config import DEFAULT_GAMMA, MODALITIES

EXIT_INPUT_ERROR = 2


def parse_slices(text: str) -> list[int]:
    """``"3,7,12"`` -> [3, 7, 12]; ranges like ``"10-14"`` are accepted too (both ends included)."""
    slices: list[int] = []
    problem = f"expected slice numbers like 3,7,12 or 10-14, got {text!r}"
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                first, last = (int(end) for end in part.split("-", 1))
                if last < first:
                    raise argparse.ArgumentTypeError(f"{problem}: the range {part} runs backwards")
                slices.extend(range(first, last + 1))
            elif part:
                slices.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(problem) from None
    if not slices:
        raise argparse.ArgumentTypeError(problem)
    if min(slices) < 0:
        raise argparse.ArgumentTypeError(f"{problem}: slice numbers start at 0")
    return slices


def add_method_arguments(parser: argparse.ArgumentParser, *, modality_from_scan: bool = False) -> None:
    parser.add_argument("--modality", choices=MODALITIES, required=not modality_from_scan,
                        help="t1 (T1-pre) or flair" + (" (default: what the scan's file name states, e.g. BIDS _FLAIR or _T1w)" if modality_from_scan else ""))
    parser.add_argument("--gamma", type=parse_gammas, default=[DEFAULT_GAMMA],
                        help=f"window side in pixels (default {DEFAULT_GAMMA}, the best shipped model); several, e.g. 32,64, fuse the heatmaps of one model per window")
    parser.add_argument("--step", type=int, help="window stride k (default: 4, the paper's; gamma/8 for windows above 32)")
    parser.add_argument("--model", type=Path, action="append",
                        help="a .safetensors checkpoint instead of the shipped model (repeat it, in --gamma's order, for several windows)")
    # Defaults of --scale, --sigma and --min-size are filled in late, from the modules that define them
    # (importing those pulls in torch / scipy, and input errors should be reported instantly).
    parser.add_argument("--scale", type=float, help="Felzenszwalb scale (default 50; 75, the paper's, with --mode paper)")
    parser.add_argument("--sigma", type=float, help="Felzenszwalb sigma (default 0.8)")
    parser.add_argument("--min-size", type=int, help="Felzenszwalb min_size (default 20)")
    parser.add_argument("--mode", choices=["merge", "paper"], default="merge",
                        help="merge (default): the top segment grown over hot neighbours; paper: the single top segment")
    parser.add_argument("--merge-ratio", type=float, help="merge mode: share of the top segment's excess heat a neighbour needs (default: tuned, docs/results.md)")
    parser.add_argument("--min-contrast", type=float,
                        help="call a slice tumour-free (empty label) when its top segment scores below this multiple of the brain's median heat "
                             "(default: tuned per modality in merge mode; 0: every slice gets a label, as the paper)")
    parser.add_argument("--grow-contrast", type=float,
                        help="a slice below --min-contrast still gets its label when it scores at least this much and its answer overlaps the label "
                             "of a neighbouring labelled slice (default: tuned per modality)")
    parser.add_argument("--run-contrast", type=float,
                        help="slices below --min-contrast still get their labels when --run-length or more consecutive slices score at least this "
                             "much and their answers overlap from slice to slice: a lesion that stands out on no slice alone (default: tuned per "
                             "modality, 3.5 on FLAIR, 0 on T1-pre and with a model's own calibrated decision; 0: off)")
    parser.add_argument("--run-length", type=int, help="the slices such a run needs (default: 4)")
    parser.add_argument("--heat-sigma", type=float, help="merge mode: smooth the heatmap inside the brain with this Gaussian sigma in pixels before scoring (default: tuned)")
    parser.add_argument("--edge-margin", type=int, help="merge mode: leave this many pixels of the brain's rim out of segment scores (default: tuned)")
    parser.add_argument("--dark-share", type=float,
                        help="merge mode: take the heat off this share of the brain, its darkest pixels (on T1-pre the fluid of the ventricles "
                             "and sulci, which the generator fills with tissue) (default: tuned per modality, 0.1 on T1-pre, 0 on FLAIR; 0: off)")
    parser.add_argument("--dark-margin", type=int,
                        help="merge mode: with --dark-share, take the heat off the brain within this many pixels of those darkest pixels too "
                             "(the fluid's partial-volume rim) (default: tuned per modality, 1 on T1-pre, 0 on FLAIR)")
    parser.add_argument("--refine-radius", type=int,
                        help="merge mode: redraw the answer along the lesion's intensity edge (bright on FLAIR, dark on T1-pre) within this many pixels "
                             "(default: tuned per modality, 20 on FLAIR, 0 on T1-pre; 0: off)")
    parser.add_argument("--volume-radius", type=int,
                        help="merge mode: after deciding across slices, redraw the labels of all segmented slices with one intensity threshold for "
                             "the scan, within this many pixels of a label on the same or a neighbouring slice (default: tuned, 3; 0: off)")
    parser.add_argument("--level-slices", action=argparse.BooleanOptionalAction, default=None,
                        help="merge mode, volume step: first scale each slice so that its brain's median is the scan's, since a scan's slices "
                             "drift in brightness and the threshold is one for all (default: tuned per modality, on for FLAIR, off on T1-pre)")
    parser.add_argument("--min-component-share", type=float,
                        help="merge mode: last, drop the labels' 3D pieces smaller than this share of the largest piece (default: tuned per modality, "
                             "0.5 on FLAIR, 0.1 on T1-pre; 0: keep every piece; 1: the largest only)")
    parser.add_argument("--min-grown-share", type=float,
                        help="merge mode, volume step: a slice without a label of its own keeps what the labels grew into it when that is at least "
                             "this share of its labelled neighbour's label (default: tuned per modality, 0.25 on FLAIR, 0.5 on T1-pre)")
    parser.add_argument("--end-weight", type=float,
                        help="merge mode, volume step: in a slice the decision left empty beside a labelled one, the threshold lies this share of the way "
                             "from the rest of the brain to the labels, instead of 0.6 as on the labelled slices, since a lesion fades at its ends "
                             "(default: tuned per modality, 0.45 on FLAIR, 0.6 on T1-pre)")
    parser.add_argument("--carry-share", type=float,
                        help="merge mode, volume step: then carry the labels one slice further, into a slice still empty, where what grows there is at "
                             "least this share of its neighbour's label: a large lesion goes on at nearly full size where its heat was too low "
                             "(default: tuned per modality, 0.75 on FLAIR, 0 on T1-pre; 0: off)")
    parser.add_argument("--follow-share", type=float,
                        help="merge mode, volume step: after the small 3D pieces are dropped, follow the lesion slice after slice into the slices the "
                             "decision labelled that are empty then (their answer lay off the lesion), each kept where what grows there is at least this "
                             "share of its neighbour's label (default: tuned per modality, 0.5 on FLAIR, 0 on T1-pre; 0: off)")
    parser.add_argument("--grow-into-small-slices", action=argparse.BooleanOptionalAction, default=None,
                        help="merge mode, volume step: let the labels grow into the slices with less brain than one window, which are not "
                             "localised, where what grows there is the share of the neighbour's label scaled by the slice's brain over the "
                             "neighbour's (a lesion reaching the scan's thin ends) (default: tuned per modality, on for FLAIR, off on T1-pre)")
    parser.add_argument("--label-sigma", type=float,
                        help="merge mode: last, smooth the labels: a voxel stays labelled where more than half of a Gaussian neighbourhood of this sigma "
                             "in pixels in-plane is (default: tuned per modality, 4 on T1-pre, 0 on FLAIR; 0 with --label-sigma-slices 0: off)")
    parser.add_argument("--label-sigma-slices", type=float,
                        help="merge mode: the same Gaussian's sigma across slices, in slices (default: tuned per modality, 1.5 on T1-pre, 0 on FLAIR)")
    parser.add_argument("--polarity", choices=["auto", "both", "bright", "dark"], default="auto",
                        help="which inpainting error counts: auto (default) the sign that marks LGG on the modality, bright on FLAIR, dark on T1-pre "
                             "(with --mode paper: both); both: the absolute error, as the paper. bright or dark also sets the side of the "
                             "lesion's edge (e.g. --polarity bright for an LGG that is not dark on T1-pre)")
    parser.add_argument("--reference", action="store_true", help="the paper's literal (slow) localiser instead of the fast one")
    parser.add_argument("--device", choices=DEVICES, default="auto")


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's one-line error format (``inpaint-seg: error: ...``, exit status 2)."""

    def error(self, message: str):
        self.exit(EXIT_INPUT_ERROR, f"inpaint-seg: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="inpaint-seg", description="Unsupervised brain-tumour segmentation by adversarial inpainting.")
    commands = parser.add_subparsers(dest="command", required=True)

    segment = commands.add_parser("segment", help="segment axial slices of a scan (or of several) and write a labels volume")
    segment.add_argument("scans", type=Path, nargs="+", metavar="scan",
                         help="NIfTI scan (.nii, .nii.gz) or 2D image; several (a cohort) with --out-dir")
    add_method_arguments(segment, modality_from_scan=True)
    segment.add_argument("--skull-stripped", action="store_true",
                         help="the scan is already skull-stripped (background 0, or NaN): skip brain extraction")
    segment.add_argument("--slices", type=parse_slices,
                         help="axial slices to segment, e.g. 3,7,12; default all. Axial: along the array axis the affine says runs "
                              "inferior-superior (the last one in most files, which is also taken when the affine cannot tell)")
    outputs = segment.add_mutually_exclusive_group(required=True)
    outputs.add_argument("--out", type=Path, help="labels file to write (.nii.gz)")
    outputs.add_argument("--out-dir", type=Path,
                         help=f"folder for the labels of each scan, SCAN_labels.nii.gz, and a table of their volumes, {SUMMARY_NAME}; a scan that "
                              "fails is reported and the others go on")
    segment.add_argument("--heatmap-out", type=Path, help="also write the heatmap (.nii.gz); with --out")
    segment.add_argument("--heatmaps", action="store_true", help="with --out-dir: also write each scan's heatmap, SCAN_heatmap.nii.gz")
    segment.add_argument("--overview", type=Path,
                         help="also write a picture (.png) of the labelled slices with the labels' outline, to check them at a glance; with --out")
    segment.add_argument("--overviews", action="store_true", help="with --out-dir: also write each scan's picture, SCAN_overview.png")
    segment.add_argument("--skip-existing", action="store_true",
                         help="with --out-dir: leave scans whose labels file exists as they are (their volumes are read into the table, which is replaced)")
    segment.add_argument("--force", action="store_true", help="overwrite existing output files")
    segment.add_argument("--refine-fraction", type=float,
                         help="fast localiser: share of the remaining windows refined at stride k after a first pass over an eighth "
                              "(gamma 32 at k 4) or a quarter of them (default 0.15 for windows up to 32 px, whose windows not run are estimated "
                              "from the first pass, which gave the reference's answers on the agreement benchmark; 0.3 above; 1: every window, "
                              "the reference's heatmap)")
    segment.add_argument("--in-plane-zoom", metavar="auto|FACTOR",
                         help="segment on a grid resampled in-plane by FACTOR (0.25-4), labels and heatmap written back on the scan's grid; "
                              "'auto': only a brain smaller than the shipped models' training brains, brought to their median size (default: the scan's grid)")

    evaluate = commands.add_parser("evaluate", help="reproduce the paper's Table 1 on LGG-layout data")
    evaluate.add_argument("--data", type=Path, required=True, help="folder with PATIENT_{t1pre,flair,mask}.nii.gz")
    evaluate.add_argument("--patients", type=Path, required=True, help="text file with one patient id per line")
    add_method_arguments(evaluate)
    evaluate.add_argument("--json", type=Path, required=True, help="where to write the results")
    evaluate.add_argument("--force", action="store_true", help="overwrite an existing JSON file")
    evaluate.add_argument("--heatmap-cache", type=Path, help="keep heatmaps in this .npz and reuse them when the settings match")
    evaluate.add_argument("--whole-volumes", action="store_true",
                          help="score every slice with brain, not only tumour slices and 4 tumour-free ones per patient (those with less brain than one window "
                               "get no heat, as in segment): adds volume Dice and the false-positive rate over all tumour-free slices")

    commands.add_parser("models", help="list the models shipped with the package")
    return parser


def check_output(path: Path | None, force: bool, *, nifti: bool = True, reads: tuple[Path, ...] = ()) -> None:
    """Fail before any work if an output could not be written, so no time is wasted and nothing is clobbered."""
    if path is None:
        return
    from .io import NIFTI_SUFFIXES, check_writable

    if any(path.resolve() == source.resolve() for source in reads):
        raise InputError(f"{path}: is also an input; choose another output name")
    check_writable(path, force, what="outputs", suffixes=NIFTI_SUFFIXES if nifti else None, how_to_force="pass --force")
    probe_writable(path.parent)


def probe_writable(folder: Path) -> None:
    """Create and remove a temporary file in ``folder``: the only test that also holds for root and odd file systems."""
    import os
    import tempfile

    try:
        fd, name = tempfile.mkstemp(prefix=".inpaint-seg-probe.", dir=folder)
    except OSError as exc:
        raise InputError(f"{folder}: output folder is not writable ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(name)


def check_method_arguments(args: argparse.Namespace) -> None:
    numbers = {"--scale": args.scale, "--sigma": args.sigma, "--merge-ratio": args.merge_ratio, "--min-contrast": args.min_contrast,
               "--grow-contrast": args.grow_contrast, "--run-contrast": args.run_contrast, "--heat-sigma": args.heat_sigma, "--min-component-share": args.min_component_share,
               "--min-grown-share": args.min_grown_share, "--end-weight": args.end_weight, "--carry-share": args.carry_share, "--follow-share": args.follow_share,
               "--dark-share": args.dark_share,
               "--label-sigma": args.label_sigma, "--label-sigma-slices": args.label_sigma_slices, "--refine-fraction": getattr(args, "refine_fraction", None)}
    for flag, value in numbers.items():
        if value is not None and not np.isfinite(value):
            raise InputError(f"{flag} must be a finite number, got {value}")
    if args.scale is not None and args.scale <= 0:
        raise InputError(f"--scale must be above 0, got {args.scale}")
    if args.model and len(args.model) != len(args.gamma):
        raise InputError(f"{len(args.model)} --model file(s) for {len(args.gamma)} window(s) --gamma {','.join(map(str, args.gamma))}; give one per window")
    if args.step is not None and args.step < 1:
        raise InputError(f"--step must be at least 1, got {args.step}")
    if args.step is not None and args.step > min(args.gamma):
        raise InputError(f"--step {args.step} is larger than the window --gamma {min(args.gamma)}: pixels between windows would get no heat")
    if args.merge_ratio is not None and not 0 <= args.merge_ratio <= 1:
        raise InputError(f"--merge-ratio must lie between 0 and 1, got {args.merge_ratio}")
    if args.dark_share is not None and not 0 <= args.dark_share < 1:
        raise InputError(f"--dark-share must lie from 0 up to (not including) 1, got {args.dark_share}")
    if args.run_length is not None and args.run_length < 1:
        raise InputError(f"--run-length must be at least 1, got {args.run_length}")
    for flag, value in (("--sigma", args.sigma), ("--min-size", args.min_size), ("--min-contrast", args.min_contrast), ("--grow-contrast", args.grow_contrast),
                        ("--run-contrast", args.run_contrast),
                        ("--heat-sigma", args.heat_sigma), ("--edge-margin", args.edge_margin), ("--dark-margin", args.dark_margin), ("--refine-radius", args.refine_radius),
                        ("--volume-radius", args.volume_radius), ("--label-sigma", args.label_sigma), ("--label-sigma-slices", args.label_sigma_slices)):
        if value is not None and value < 0:
            raise InputError(f"{flag} must be at least 0, got {value}")
    for flag, value in (("--min-component-share", args.min_component_share), ("--min-grown-share", args.min_grown_share), ("--end-weight", args.end_weight),
                        ("--carry-share", args.carry_share), ("--follow-share", args.follow_share)):
        if value is not None and not 0 <= value <= 1:
            raise InputError(f"{flag} must lie between 0 and 1, got {value}")


def check_content(scan, gamma: int, skull_stripped: bool = False) -> None:
    """What can be refused about a scan before the model is loaded: slices smaller than the window (in-plane axes
    are the first two), a volume too thin for brain extraction, no finite voxels, nothing but zeros."""
    from .brain import check_extractable
    from .intensity import check_finite

    shape = scan.data.shape
    if min(shape[:2]) < gamma:
        raise InputError(f"slices of {shape[0]}x{shape[1]} pixels are smaller than the window gamma={gamma}; use a smaller --gamma")
    if scan.is_volume and not skull_stripped:
        check_extractable(shape)
    if not np.any(check_finite(scan.data, what=str(scan.path), background=skull_stripped or not scan.is_volume)):
        raise InputError(f"{scan.path}: the image is empty (every voxel is 0)")


def warn_about_small_brains(brain: np.ndarray, asked: list[int] | None, gamma: int, grown_into: bool = False) -> None:
    """Say so when slices the user asked for, or every slice, have less brain than one window: they are not looked
    at, and left empty (or, when ``grown_into``, labelled only where a neighbour's label grows into them), which
    the labels alone would not tell from "no tumour found"."""
    from .pipeline import enough_brain

    indices = asked if asked else range(brain.shape[2])
    small = [index for index in indices if not enough_brain(brain[:, :, index], gamma)]
    if small and (asked or len(small) == len(indices)):
        which = "every slice" if len(small) == len(indices) else f"slice(s) {','.join(map(str, small))}"
        fate = "labelled only where a neighbouring slice's label grows into them" if grown_into else "left empty"
        print(f"inpaint-seg: warning: {which}: less brain than one window ({gamma}x{gamma} pixels); not localised, {fate}", file=sys.stderr)


def felzenszwalb_params(args: argparse.Namespace):
    from .segmentation import PAPER_SCALE, FelzenszwalbParams

    defaults = FelzenszwalbParams()
    return FelzenszwalbParams(
        (PAPER_SCALE if args.mode == "paper" else defaults.scale) if args.scale is None else args.scale,
        defaults.sigma if args.sigma is None else args.sigma,
        defaults.min_size if args.min_size is None else args.min_size,
    )


def selection(args: argparse.Namespace):
    """The selection the flags ask for: the paper's in paper mode, else the defaults of the modality
    (:func:`~.segmentation.default_selection`), with the no-tumour decision stored with the model if it carries one
    (:func:`~.models.config.stored_decision`), and what was given; the lesion's side follows an explicit
    --polarity bright or dark (:func:`~.segmentation.lesion_sign`)."""
    from .models.config import stored_decision
    from .segmentation import DEFAULT_RUN_LENGTH, PAPER_SELECTION, Selection, default_selection, lesion_sign, with_decision

    if args.mode == "paper":
        given = {"merge ratio": args.merge_ratio, "heat sigma": args.heat_sigma, "edge margin": args.edge_margin, "refine radius": args.refine_radius,
                 "volume radius": args.volume_radius, "level slices": args.level_slices, "min component share": args.min_component_share, "min grown share": args.min_grown_share,
                 "end weight": args.end_weight, "carry share": args.carry_share, "follow share": args.follow_share,
                 "grow into small slices": args.grow_into_small_slices, "dark share": args.dark_share, "dark margin": args.dark_margin,
                 "label sigma": args.label_sigma, "label sigma slices": args.label_sigma_slices}
        if any(value is not None for value in given.values()):
            raise InputError(f"--mode paper takes the single top segment; {', '.join(k for k, v in given.items() if v is not None)} apply to --mode merge")
        if args.min_contrast is None and args.grow_contrast is None and args.run_contrast is None:
            return PAPER_SELECTION
        return Selection(mode="paper", min_contrast=args.min_contrast or 0.0, grow_contrast=args.grow_contrast, run_contrast=args.run_contrast or 0.0,
                         run_length=DEFAULT_RUN_LENGTH if args.run_length is None else args.run_length, heat_sigma=0.0, edge_margin=0)
    defaults = default_selection(args.modality)
    stored = stored_decision(config for _, config in resolve_models(args))
    if stored is not None:
        defaults = with_decision(defaults, stored)
    try:
        return Selection(
            mode="merge",
            merge_ratio=defaults.merge_ratio if args.merge_ratio is None else args.merge_ratio,
            min_contrast=defaults.min_contrast if args.min_contrast is None else args.min_contrast,
            grow_contrast=defaults.grow_contrast if args.grow_contrast is None else args.grow_contrast,
            run_contrast=defaults.run_contrast if args.run_contrast is None else args.run_contrast,
            run_length=defaults.run_length if args.run_length is None else args.run_length,
            heat_sigma=defaults.heat_sigma if args.heat_sigma is None else args.heat_sigma,
            edge_margin=defaults.edge_margin if args.edge_margin is None else args.edge_margin,
            refine_radius=defaults.refine_radius if args.refine_radius is None else args.refine_radius,
            lesion=lesion_sign(args.polarity, args.modality),
            volume_radius=defaults.volume_radius if args.volume_radius is None else args.volume_radius,
            level_slices=defaults.level_slices if args.level_slices is None else args.level_slices,
            min_component_share=defaults.min_component_share if args.min_component_share is None else args.min_component_share,
            min_grown_share=defaults.min_grown_share if args.min_grown_share is None else args.min_grown_share,
            end_weight=defaults.end_weight if args.end_weight is None else args.end_weight,
            carry_share=defaults.carry_share if args.carry_share is None else args.carry_share,
            follow_share=defaults.follow_share if args.follow_share is None else args.follow_share,
            grow_into_small_slices=defaults.grow_into_small_slices if args.grow_into_small_slices is None else args.grow_into_small_slices,
            dark_share=defaults.dark_share if args.dark_share is None else args.dark_share,
            dark_margin=defaults.dark_margin if args.dark_margin is None else args.dark_margin,
            label_sigma=defaults.label_sigma if args.label_sigma is None else args.label_sigma,
            label_sigma_slices=defaults.label_sigma_slices if args.label_sigma_slices is None else args.label_sigma_slices,
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None


def decision_note(args: argparse.Namespace, resolved: list) -> str | None:
    """:func:`~.models.config.decision_caveat` of the models, unless the decision was given on the command line."""
    from .models.config import decision_caveat

    if args.mode == "paper" or args.min_contrast is not None:
        return None
    return decision_caveat([path for path, _ in resolved], [config for _, config in resolved])


def heat_polarity(args: argparse.Namespace) -> str:
    """--polarity resolved: "auto" is the paper's absolute error in paper mode, else the modality's lesion sign."""
    from .pipeline import resolve_polarity

    return "both" if args.polarity == "auto" and args.mode == "paper" else resolve_polarity(args.polarity, args.modality)


def parse_gammas(text: str) -> list[int]:
    """``"32"`` -> [32]; ``"32,64"`` -> [32, 64] (windows whose heatmaps are fused)."""
    try:
        gammas = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected window sides like 32 or 32,64, got {text!r}") from None
    if not gammas or min(gammas) < 1 or len(set(gammas)) != len(gammas):
        raise argparse.ArgumentTypeError(f"expected distinct positive window sides like 32 or 32,64, got {text!r}")
    return gammas


def resolve_models(args: argparse.Namespace) -> list:
    """(path, configuration) per window, checked against --modality and --gamma, from the files' headers only."""
    from .models.config import resolve_model

    files = args.model or [None] * len(args.gamma)
    return [resolve_model(path, args.modality, gamma) for path, gamma in zip(files, args.gamma)]


def load_models(args: argparse.Namespace, device: str) -> list:
    from .models.checkpoint import load_model

    files = args.model or [None] * len(args.gamma)
    return [load_model(path, args.modality, gamma, device) for path, gamma in zip(files, args.gamma)]


def check_segment_arguments(args: argparse.Namespace) -> None:
    """What is wrong with the options whatever the scan: refused once, before a cohort's first scan."""
    check_method_arguments(args)
    if args.refine_fraction is not None and not 0 <= args.refine_fraction <= 1:
        raise InputError(f"--refine-fraction must lie between 0 and 1, got {args.refine_fraction}")
    if args.refine_fraction is not None and args.reference:
        raise InputError("--refine-fraction applies to the fast localiser; --reference runs every window anyway")
    if args.in_plane_zoom is not None:
        from .in_plane import parse_zoom

        parse_zoom(args.in_plane_zoom)
    if args.model:
        from .models.config import checkpoint_config

        for path in args.model:
            checkpoint_config(path)  # its header only: a missing or broken file is named at once


def run_segment(args: argparse.Namespace) -> None:
    """One scan into ``--out``, or each of several into ``--out-dir``."""
    if args.out_dir is not None:
        run_cohort(args)
        return
    if len(args.scans) > 1:
        raise InputError(f"{len(args.scans)} scans given: write their labels into a folder with --out-dir")
    if args.heatmaps or args.overviews or args.skip_existing:
        raise InputError("--heatmaps, --overviews and --skip-existing go with --out-dir; with --out, --heatmap-out and --overview write one scan's")
    segment_scan(argparse.Namespace(**vars(args), scan=args.scans[0]))


def run_cohort(args: argparse.Namespace) -> None:
    """Each scan as ``segment_scan`` does it, into ``--out-dir``; a scan that fails is reported and the others go on,
    and the table of volumes is rewritten after every scan. Ends with an error when a scan failed."""
    from .cohort import label_summary, output_paths, summary_row, write_summary
    from .io import read_scan
    from .provenance import sidecar_path

    for one_file, each_scan in (("heatmap_out", "heatmaps"), ("overview", "overviews")):
        if getattr(args, one_file) is not None:
            raise InputError(f"--{one_file.replace('_', '-')} names one file; with --out-dir, --{each_scan} writes each scan's beside its labels")
    check_segment_arguments(args)
    if not args.out_dir.is_dir():
        raise InputError(f"{args.out_dir}: {'is a file, not a folder' if args.out_dir.exists() else 'output folder does not exist'}")
    probe_writable(args.out_dir)
    outputs = output_paths(args.scans, args.out_dir, args.heatmaps, args.overviews)
    summary_path = args.out_dir / SUMMARY_NAME
    if not args.skip_existing:
        for labels, heatmap, overview in outputs:
            for path in (labels, heatmap):
                check_output(path, args.force, reads=tuple(args.scans))
            for path in (sidecar_path(labels), overview):
                check_output(path, args.force, nifti=False)
        check_output(summary_path, args.force, nifti=False)
    rows, failed = [], 0
    for number, (scan, (labels, heatmap, overview)) in enumerate(zip(args.scans, outputs), start=1):
        print(f"inpaint-seg: [{number}/{len(args.scans)}] {scan}", file=sys.stderr)
        modality = args.modality
        try:
            if args.skip_existing and labels.exists():
                existing = read_scan(labels)
                rows.append(summary_row(scan, modality, labels, label_summary(existing.data, existing.affine), "skipped: labels exist"))
            else:
                scan_args = argparse.Namespace(**vars(args), scan=scan)
                scan_args.out, scan_args.heatmap_out, scan_args.overview = labels, heatmap, overview
                summary = segment_scan(scan_args)
                modality = scan_args.modality
                rows.append(summary_row(scan, modality, labels, summary, "segmented"))
        except (InputError, MemoryError) as exc:
            failed += 1
            message = str(exc) if isinstance(exc, InputError) else "out of memory"
            print(f"inpaint-seg: error: {message}", file=sys.stderr)
            rows.append(summary_row(scan, modality, labels, None, f"failed: {message}"))
        write_summary(summary_path, rows)
    print(f"{summary_path}: {len(rows) - failed} of {len(rows)} scans labelled")
    if failed:
        raise InputError(f"{failed} of {len(rows)} scans failed; the others are labelled (see {summary_path})")


def segment_scan(args: argparse.Namespace):
    """Segment ``args.scan`` into ``args.out`` (and ``args.heatmap_out``); returns the labels' :class:`~.cohort.LabelSummary`."""
    # Everything that can be checked without torch is checked first, so bad input fails in well under a second.
    from .cohort import label_summary
    from .display import DEFAULT_AXIAL_AXIS, axial_last
    from .io import read_scan, write_float_volume, write_labels
    from .orientation import TRAINING_AXES, as_trained, axis_codes, to_file_order

    if args.modality is None:
        from .display import scan_modality

        args.modality = scan_modality(args.scan, None)
        print(f"inpaint-seg: modality {args.modality}, as the file name states", file=sys.stderr)
    if args.heatmap_out is not None and args.out.resolve() == args.heatmap_out.resolve():
        raise InputError(f"{args.out}: --out and --heatmap-out name the same file")
    for output in (args.out, args.heatmap_out):
        check_output(output, args.force, reads=(args.scan, *(args.model or ())))
    if args.overview is not None and args.overview.suffix.lower() != ".png":
        raise InputError(f"{args.overview}: the overview is a PNG picture; use a .png file name")
    check_output(args.overview, args.force, nifti=False, reads=(args.scan,))
    from .provenance import sidecar_path

    check_output(sidecar_path(args.out), args.force, nifti=False, reads=(args.scan,))
    check_segment_arguments(args)
    from .in_plane import parse_zoom

    zoom_choice = parse_zoom(args.in_plane_zoom) if args.in_plane_zoom is not None else None
    from .models.config import shipped_model_caveat, uses_shipped_model

    resolved = resolve_models(args)  # reads the checkpoints' headers only
    model_paths = [path for path, _ in resolved]
    caveat = shipped_model_caveat(model_paths, args.modality)
    if caveat:
        print(f"inpaint-seg: note: {caveat}", file=sys.stderr)
    stored = read_scan(args.scan)
    scan, back = as_trained(stored)
    if back is not None:
        print(f"inpaint-seg: voxel axes {''.join(axis_codes(stored.affine))} by the affine: slices turned to {''.join(TRAINING_AXES)} as the models "
              "learnt them (--slices counts from inferior); labels are written in the file's own order", file=sys.stderr)
    working, axis = axial_last(scan)
    if axis not in (None, DEFAULT_AXIAL_AXIS):
        print(f"inpaint-seg: axial slices lie along array axis {axis} of this file (from its affine); --slices counts them", file=sys.stderr)
    check_content(working, max(args.gamma), args.skull_stripped)
    n_slices = working.data.shape[2] if working.is_volume else 1
    if args.slices and max(args.slices) >= n_slices:
        raise InputError(f"slice {max(args.slices)} is outside the scan (its slices are numbered 0 to {n_slices - 1})")

    from tqdm import tqdm

    from .brain_size import small_brain_note
    from .in_plane import chosen_zoom, heatmap_to_grid, labels_to_grid, zoom_prepared
    from .pipeline import prepare_scan, run_to_end, segment_volume

    device = pick_device(args.device)
    models = load_models(args, device)
    note = decision_note(args, resolved)
    if note:
        print(f"inpaint-seg: note: {note}", file=sys.stderr)
    prepared = prepare_scan(working, skull_stripped=args.skull_stripped, device=device)
    grid = prepared.image.shape
    zoom = chosen_zoom(zoom_choice, prepared.brain)
    size_note = small_brain_note(prepared.brain) if uses_shipped_model(model_paths) and zoom is None else None
    if size_note:
        print(f"inpaint-seg: note: {size_note}", file=sys.stderr)
    if zoom is not None:
        prepared = zoom_prepared(prepared, zoom)
        print(f"inpaint-seg: segmenting on a grid resampled in-plane by x{zoom:.2f} ({prepared.image.shape[0]}x{prepared.image.shape[1]}); "
              "labels and heatmap are written on the scan's grid", file=sys.stderr)
    chosen = selection(args)
    warn_about_small_brains(prepared.brain, args.slices, max(args.gamma), grown_into=chosen.grow_into_small_slices and bool(chosen.volume_radius))
    progress = segment_volume(prepared, models, args.slices, step=args.step, params=felzenszwalb_params(args), selection=chosen,
                              fast=not args.reference, device=device, polarity=heat_polarity(args), refine_fraction=args.refine_fraction)
    last = run_to_end(tqdm(progress, total=len(args.slices) if args.slices else prepared.n_slices, desc="segment", unit="slice"))
    labels, heatmap = last.labels, last.heatmap
    if zoom is not None:
        labels, heatmap = labels_to_grid(labels, grid), heatmap_to_grid(heatmap, grid)
    shown_labels = labels  # as segmented (axial last, turned as trained): the overview's slices are those --slices counts
    if scan.data.ndim == 2:
        labels, heatmap = labels[:, :, 0], heatmap[:, :, 0]
    elif axis != DEFAULT_AXIAL_AXIS:  # back to the file's axis order
        labels, heatmap = np.moveaxis(labels, -1, axis), np.moveaxis(heatmap, -1, axis)
    labels, heatmap = to_file_order(labels, back), to_file_order(heatmap, back)
    write_labels(args.out, labels, stored, force=args.force)
    if args.heatmap_out:
        write_float_volume(args.heatmap_out, heatmap, stored, force=args.force)
    summary = label_summary(labels, stored.affine)
    write_labels_sidecar(args, resolved, device, zoom, axis_codes(stored.affine) if back is not None else None, summary)
    if args.overview:
        from .overview import overview_image, write_overview

        write_overview(args.overview, overview_image(working.data, shown_labels, overview_title(args.scan, summary)))
    volume = f" ({summary.ml:.2f} mL by the scan's affine)" if summary.ml is not None else ""
    print(f"{args.out}: {summary.voxels} tumour voxels{volume} in {summary.slices} slices")
    return summary


def write_labels_sidecar(args: argparse.Namespace, models: list, device: str, zoom: float | None, turned_from: tuple[str, ...] | None, summary) -> None:
    """What made ``args.out``, beside it as JSON (:mod:`.provenance`): the command, the models' files and hashes,
    every setting as resolved (defaults included), what was done to the scan's geometry, and what was found."""
    from .models.config import uses_shipped_model
    from .provenance import labels_record, localiser_record, model_record, sidecar_path, write_sidecar

    record = labels_record(
        command=args.argv, scan=args.scan, modality=args.modality,
        models=[model_record(path, config, uses_shipped_model([path])) for path, config in models],
        localiser=localiser_record(fast=not args.reference, device=device, polarity=heat_polarity(args), gammas=[config.gamma for _, config in models],
                                   step=args.step, refine_fraction=args.refine_fraction),
        felzenszwalb=felzenszwalb_params(args), selection=selection(args),
        geometry={"BrainExtraction": "none (--skull-stripped)" if args.skull_stripped else "deepbet", "InPlaneZoom": zoom,
                  "TurnedFromAxes": "".join(turned_from) if turned_from else None},
        slices=args.slices, summary=summary,
    )
    write_sidecar(sidecar_path(args.out), record)


def overview_title(scan: Path, summary) -> str:
    """The overview's title line: which scan, and what its labels measure."""
    volume = f", {summary.ml:.2f} mL" if summary.ml is not None else ""
    return f"{scan.name}: {summary.voxels} tumour voxels{volume} in {summary.slices} slices"


def run_evaluate(args: argparse.Namespace) -> None:
    from .evaluation import check_heatmap_caches
    from .training.data import check_lgg_patients, read_patient_list

    patients = read_patient_list(args.patients)
    check_output(args.json, args.force, nifti=False, reads=(args.patients, *((args.heatmap_cache,) if args.heatmap_cache else ())))
    check_method_arguments(args)
    resolve_models(args)
    check_lgg_patients(args.data, patients, args.modality, args.patients)
    if args.heatmap_cache:
        check_heatmap_caches(args.heatmap_cache, args.gamma)
        probe_writable(args.heatmap_cache.parent)

    from dataclasses import replace

    from .evaluation import evaluate_lgg
    from .io import write_atomically
    from .segmentation import PAPER_SELECTION

    device = pick_device(args.device)
    models = load_models(args, device)
    note = decision_note(args, resolve_models(args))
    if note:
        print(f"inpaint-seg: note: {note}", file=sys.stderr)
    chosen = selection(args)
    # Each improvement added in turn: the paper, merging on the raw heatmap, the chosen scoring heat with every
    # slice answered, the darkest tissue's heat taken off, the intensity refinement, the chosen no-tumour decision,
    # the volume redrawn together, then on slices levelled first, with the lesion's ends drawn at their own threshold,
    # carried one slice further, its small 3D pieces dropped, then the labels smoothed, runs of slices labelled at a
    # lower contrast, the lesion followed into the slices the decision labelled, and last, grown into slices with too
    # little brain to be localised.
    small_left_out = replace(chosen, grow_into_small_slices=False)
    unfollowed = replace(small_left_out, follow_share=0.0)
    unrun = replace(unfollowed, run_contrast=0.0)
    pieces_dropped = replace(unrun, label_sigma=0.0, label_sigma_slices=0.0)
    redrawn = replace(pieces_dropped, min_component_share=0.0)
    uncarried = replace(redrawn, carry_share=0.0)
    ends_unchanged = replace(uncarried, end_weight=None)
    unlevelled = replace(ends_unchanged, level_slices=False)
    decided = replace(unlevelled, volume_radius=0)
    always = replace(decided, min_contrast=0.0, grow_contrast=None)
    unrefined = replace(always, refine_radius=0)
    undarkened = replace(unrefined, dark_share=0.0)
    raw_merge = replace(undarkened, heat_sigma=0.0, edge_margin=0)
    selections = {"paper": PAPER_SELECTION}
    if chosen.mode != "paper":
        selections.update({"merge, raw heat": raw_merge, "always answers, darkest counted": undarkened, "always answers, unrefined": unrefined,
                           "always answers": always, "before the volume redraw": decided, "volume redrawn, slices not levelled": unlevelled,
                           "ends at the scan's threshold": ends_unchanged, "not carried further": uncarried, "before dropping small pieces": redrawn,
                           "before smoothing the labels": pieces_dropped, "runs of slices not labelled": unrun,
                           "not followed into decided slices": unfollowed, "slices with little brain left out": small_left_out, "chosen": chosen})
        if not chosen.dark_share:
            del selections["always answers, darkest counted"]
        if not chosen.refine_radius:
            del selections["always answers, unrefined"]
        if not chosen.min_contrast:  # no decision: the selection before the volume step always answers already
            del selections["always answers"]
        if not chosen.volume_radius:
            del selections["before the volume redraw"]
        if not (chosen.volume_radius and chosen.level_slices):
            del selections["volume redrawn, slices not levelled"]
        if not (chosen.volume_radius and chosen.end_weight is not None):
            del selections["ends at the scan's threshold"]
        if not (chosen.volume_radius and chosen.carry_share):
            del selections["not carried further"]
        if not chosen.min_component_share:
            del selections["before dropping small pieces"]
        if not (chosen.label_sigma or chosen.label_sigma_slices):
            del selections["before smoothing the labels"]
        if not chosen.run_contrast:
            del selections["runs of slices not labelled"]
        if not (chosen.volume_radius and chosen.follow_share):
            del selections["not followed into decided slices"]
        if not (chosen.volume_radius and chosen.grow_into_small_slices):
            del selections["slices with little brain left out"]
    results = evaluate_lgg(
        args.data, patients, args.modality, models, step=args.step, params=felzenszwalb_params(args), selections=selections,
        fast=not args.reference, device=device, cache=args.heatmap_cache, report=lambda line: print(line, file=sys.stderr),
        polarity=heat_polarity(args), whole_volumes=args.whole_volumes,
    )
    from .models.config import uses_shipped_model
    from .provenance import model_record, run_record

    results["provenance"] = {**run_record(args.argv), "Models": [model_record(path, config, uses_shipped_model([path])) for path, config in resolve_models(args)]}
    write_atomically(args.json, lambda tmp: Path(tmp).write_text(json.dumps(results, indent=1)))

    def number(value, digits: int) -> str:  # None when there was nothing to measure (no tumour / healthy slices)
        return "n/a" if value is None else f"{value:.{digits}f}"

    for name, scores in results["selections"].items():
        print(f"{args.modality} gamma={'+'.join(map(str, args.gamma))} {scores['selection']}: Dice {number(scores['dice_mean'], 3)} ± {number(scores['dice_sd'], 3)} "
              f"on {scores['n_tumour_slices']} tumour slices; false positives on {number(scores['false_positive_rate'], 2)} of {scores['n_healthy_slices']} healthy slices"
              + (f"; volume Dice {number(scores['volume_dice_mean'], 3)}" if args.whole_volumes else ""))
    for gamma, quality in results["inpainting"].items():
        print(f"inpainting gamma={gamma}: PSNR {number(quality['psnr_mean'], 2)}, SSIM {number(quality['ssim_mean'], 3)} over {quality['n_holes']} holes")


def run_models(_: argparse.Namespace) -> None:
    from .models.config import SHIPPED_MODEL_CAVEATS, checkpoint_config, shipped_model_path, shipped_models

    if not shipped_models():
        print("no default models are shipped with this installation; pass --model CHECKPOINT.safetensors")
    for modality, gamma in shipped_models():
        config = checkpoint_config(shipped_model_path(modality, gamma))
        print(f"{modality} gamma={gamma}: {config.iterations} iterations, context {config.context}, data: {config.data}")
    for modality in dict.fromkeys(modality for modality, _ in shipped_models()):
        if modality in SHIPPED_MODEL_CAVEATS:
            print(f"note, {modality}: {SHIPPED_MODEL_CAVEATS[modality]}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # written into each labels file's sidecar
    handlers = {"segment": run_segment, "evaluate": run_evaluate, "models": run_models}
    try:
        handlers[args.command](args)
    except InputError as exc:
        print(f"inpaint-seg: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except MemoryError:
        print("inpaint-seg: error: out of memory; segment fewer slices (--slices) or use a machine with more memory", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print("inpaint-seg: interrupted; nothing of the scan under way was written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
