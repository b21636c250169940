"""Reference (paper) versus fast localiser, side by side in one process, on real slices when available.

    python benchmarks/bench_localizer.py --modality flair --slices 3            # per-slice comparison
    python benchmarks/bench_localizer.py --modality flair --slices all          # every validation tumour slice
    python benchmarks/bench_localizer.py --modality flair --volume               # whole scan, fast path
    python benchmarks/bench_localizer.py --modality flair --mode paper          # segments ranked as the paper does
    python benchmarks/bench_localizer.py --modality flair --slices all --keep DIR   # also save each slice's heatmaps
    python benchmarks/bench_localizer.py --modality flair --kept DIR            # a changed fast path against them
    python benchmarks/bench_localizer.py --modality flair --volume --save-volume scan.npz   # then --volume-from scan.npz elsewhere
    python benchmarks/bench_localizer.py --modality flair --slices 12 --per-patient 3 --save-slices s.npz   # then --slices-from s.npz elsewhere

Prints one JSON object. Segments are ranked as the CLI's default mode does (--mode default) or as the paper
(--mode paper), with the same settings for both paths. Slices come from the tumour slices of the validation patients in
../shared/data/lgg (splits/lgg_val.txt); without that folder a synthetic slice is made.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import torch

from napari_inpaint_seg.evaluation import MIN_TUMOUR_PIXELS
from napari_inpaint_seg.io import read_scan
from napari_inpaint_seg.localizer import fast_heatmap, final, reference_heatmap
from napari_inpaint_seg.metrics import dice
from napari_inpaint_seg.models.checkpoint import load_model
from napari_inpaint_seg.models.window_inference import bfloat16_is_fast
from napari_inpaint_seg.pipeline import PreparedScan, prepare_scan, resolve_polarity, run_to_end, segment_image, segment_volume
from napari_inpaint_seg.segmentation import PAPER_SELECTION, PAPER_SUPERPIXELS, FelzenszwalbParams, Selection, default_selection
from napari_inpaint_seg.training.data import lgg_patient_volume_paths, read_patient_list

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "lgg"


def real_slices(modality: str, count: int | None, per_patient: int = 1) -> Iterator[tuple[PreparedScan, int, np.ndarray]]:
    """Tumour slices of the validation patients: (prepared scan, index, tumour mask). With ``count``, from each
    of the first ``count`` patients that have one, ``per_patient`` tumour slices evenly spread over the tumour
    (1: the middle one); with None, every tumour slice."""
    patients = read_patient_list(ROOT / "splits" / ("lgg_val_t1.txt" if modality == "t1" else "lgg_val.txt"))
    chosen = 0
    for patient in patients:
        if count is not None and chosen == count:
            return
        scan_path, mask_path = lgg_patient_volume_paths(DATA, patient, modality)
        tumour = read_scan(mask_path).data > 0
        candidates = np.flatnonzero(tumour.sum(axis=(0, 1)) >= MIN_TUMOUR_PIXELS)
        if not len(candidates):
            continue
        prepared = prepare_scan(read_scan(scan_path))
        spread = candidates[((np.arange(per_patient) + 0.5) * len(candidates) / per_patient).astype(int)] if count is not None else candidates
        for index in np.unique(spread):
            yield prepared, int(index), tumour[:, :, index]
        chosen += 1


def synthetic_slice() -> list[tuple[PreparedScan, int, np.ndarray]]:
    """A disc of 'brain' with a brighter blob, 256 x 256, when no real data is present."""
    yy, xx = np.mgrid[:256, :256]
    brain = (yy - 128) ** 2 / 100**2 + (xx - 128) ** 2 / 80**2 <= 1
    rng = np.random.default_rng(0)
    image = np.where(brain, 0.4 + 0.05 * rng.standard_normal((256, 256)), 0).clip(0, 1).astype(np.float32)
    blob = (yy - 100) ** 2 + (xx - 150) ** 2 <= 15**2
    image[blob] = 0.9
    from napari_inpaint_seg.io import Scan

    prepared = PreparedScan(Scan(image[:, :, None], np.eye(4), None), image[:, :, None], brain[:, :, None])
    return [(prepared, 0, blob)]


def slice_count(text: str) -> int | None:
    return None if text == "all" else int(text)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


# What each mode ranks segments with, as the CLI does it: (error sign, Felzenszwalb parameters, selection).
def mode_settings(mode: str, modality: str) -> tuple[str, FelzenszwalbParams, Selection]:
    if mode == "paper":
        return "both", PAPER_SUPERPIXELS, PAPER_SELECTION
    return resolve_polarity("auto", modality), FelzenszwalbParams(), default_selection(modality)


def chosen_slices(args) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """(index, image, brain, tumour) per slice to compare: from --slices-from, the data or a synthetic slice."""
    if args.slices_from:
        with np.load(args.slices_from) as saved:
            if str(saved["modality"]) != args.modality:
                sys.exit(f"{args.slices_from}: saved from {saved['modality']} scans, not {args.modality}")
            yield from zip(saved["index"].tolist(), saved["image"], saved["brain"], saved["tumour"])
        return
    for prepared, index, tumour in real_slices(args.modality, args.slices, args.per_patient) if DATA.is_dir() else synthetic_slice():
        yield index, prepared.image[:, :, index], prepared.brain[:, :, index], tumour


def save_slices(args) -> dict:
    """--save-slices: the chosen slices (prepared, brain extraction included) in one .npz file, so that both
    paths can be compared where neither ../shared nor deepbet is (a GPU machine)."""
    indices, images, brains, tumours = zip(*chosen_slices(args))
    np.savez_compressed(args.save_slices, index=np.array(indices), image=np.stack(images), brain=np.stack(brains), tumour=np.stack(tumours), modality=args.modality)
    return {"saved_slices": len(indices), "file": str(args.save_slices)}


def slices_to_compare(args) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, dict | None]]:
    """(index, image, brain, tumour, kept run or None) per slice: from a --keep folder, else :func:`chosen_slices`."""
    if args.kept:
        for path in sorted(args.kept.glob("*.npz")):
            with np.load(path) as kept:
                settings = {name: str(kept[name]) for name in ("modality", "gamma", "step", "polarity")}
                asked = {"modality": args.modality, "gamma": str(args.gamma), "step": str(args.step), "polarity": mode_settings(args.mode, args.modality)[0]}
                if settings != asked:
                    sys.exit(f"{path}: kept with {settings}, not {asked}")
                kept = dict(kept)
                if str(kept.get("device")) != device_name(args.device):  # seconds on other hardware or threads: no ratio
                    kept["seconds_reference"] = float("nan")
                yield int(kept["index"]), kept["image"], kept["brain"], kept["tumour"], kept
        return
    for index, image, brain, tumour in chosen_slices(args):
        yield index, image, brain, tumour, None


def device_name(device: str) -> str:
    """What the times were measured on; a kept reference time is compared only with a run on the same."""
    return torch.cuda.get_device_name() if device.startswith("cuda") else f"cpu ({torch.get_num_threads()} threads)"


def fast_precision(args) -> str:
    """The fast path's arithmetic in this run: its speed depends on it more than on anything else of the CPU's."""
    use_bfloat16 = args.precision == "bfloat16" or (args.precision == "auto" and bfloat16_is_fast(args.device))
    return "bfloat16" if use_bfloat16 else "float32"


def fast_options(args) -> dict:
    """The fast path's settings the command line overrides (the rest keep fast_heatmap's defaults)."""
    options = {"coarse_factor": args.coarse_factor, "first_period": args.first_period, "refine_fraction": args.refine_fraction,
               "bfloat16": {"auto": None, "float32": False, "bfloat16": True}[args.precision]}
    return {name: value for name, value in options.items() if value is not None}


def warm_up(args, generator, config, image: np.ndarray, brain: np.ndarray, polarity: str) -> float:
    """One untimed fast-path run (with --warm-up): a GPU's first call sets up its context and kernels, which is
    not the per-slice cost a user sees after the first slice. Returns its seconds, reported apart."""
    began = time.perf_counter()
    final(fast_heatmap(generator, config, image, brain, step=args.step, device=args.device, polarity=polarity, **fast_options(args)))
    return time.perf_counter() - began


def compare_slices(args, generator, config) -> dict:
    polarity, params, selection = mode_settings(args.mode, args.modality)
    fast = partial(fast_heatmap, **fast_options(args))
    rows = []  # each also goes to stderr as it finishes: a long run that is stopped still leaves its rows
    warm_up_seconds = None
    for index, image, brain, tumour, kept in slices_to_compare(args):
        if args.warm_up and warm_up_seconds is None:
            warm_up_seconds = warm_up(args, generator, config, image, brain, polarity)
        timings, heatmaps = {}, {}
        for name, run in (("reference", reference_heatmap), ("fast", fast)):
            if kept is not None and name == "reference":  # measured when it was kept
                heatmaps[name], timings[name] = kept["reference"], float(kept["seconds_reference"])
                continue
            began = time.perf_counter()
            heatmaps[name] = final(run(generator, config, image, brain, step=args.step, device=args.device, polarity=polarity))
            timings[name] = time.perf_counter() - began
        began = time.perf_counter()
        next(iter(fast(generator, config, image, brain, step=args.step, device=args.device, polarity=polarity)))
        first_update = time.perf_counter() - began
        results = {name: segment_image(index, image, brain, heat, params, selection) for name, heat in heatmaps.items()}
        if args.keep:
            np.savez_compressed(args.keep / f"{len(rows):03d}_slice{index}.npz", image=image, brain=brain, tumour=tumour, index=index, modality=args.modality,
                                gamma=args.gamma, step=args.step, polarity=polarity, seconds_reference=timings["reference"], device=device_name(args.device),
                                **heatmaps)
        rows.append(
            {
                "seconds_reference": timings["reference"],
                "seconds_fast": timings["fast"],
                "seconds_to_first_update": first_update,
                "pearson_r": pearson(heatmaps["reference"][brain], heatmaps["fast"][brain]),
                "same_top_segment": results["reference"].ranking[0].label == results["fast"].ranking[0].label,
                "dice_reference": dice(results["reference"].answer(), tumour),
                "dice_fast": dice(results["fast"].answer(), tumour),
            }
        )
        print(json.dumps({"slice": index, **rows[-1]}), file=sys.stderr, flush=True)
    if not rows:
        sys.exit(f"no slices to compare{f' in {args.kept}' if args.kept else ''}")
    mean = lambda key: float(np.mean([row[key] for row in rows]))  # noqa: E731
    reference_seconds = mean("seconds_reference")
    reference_seconds = None if np.isnan(reference_seconds) else reference_seconds  # kept on another device or thread count
    return {
        "mode": args.mode,
        "polarity": polarity,
        "selection": f"{selection.description}, Felzenszwalb scale {params.scale:g}",
        "seconds_per_slice_reference": reference_seconds,
        "seconds_per_slice_fast": mean("seconds_fast"),
        "median_seconds_per_slice_fast": float(np.median([row["seconds_fast"] for row in rows])),
        "warm_up_seconds": warm_up_seconds,
        "ratio": reference_seconds and reference_seconds / mean("seconds_fast"),
        "seconds_to_first_partial_heatmap": mean("seconds_to_first_update"),
        "pearson_r": mean("pearson_r"),
        "same_top_segment_share": mean("same_top_segment"),
        "dice_reference": mean("dice_reference"),
        "dice_fast": mean("dice_fast"),
        "largest_dice_difference": max(abs(row["dice_reference"] - row["dice_fast"]) for row in rows),
        "n_slices": len(rows),
        "fast_path_settings": fast_options(args) or "defaults",
        "data": data_description(args),
    }


def data_description(args) -> str:
    if args.kept:
        return f"kept slices of {args.kept} (reference times from when they were kept; none when kept on another device or thread count)"
    if args.slices_from:
        return f"slices saved in {args.slices_from} (both paths run here)"
    return "lgg validation tumour slices" if DATA.is_dir() else "synthetic slice"


def profile_fast_path(args, generator, config) -> None:
    """--profile: the fast path on the first slice under torch.profiler (after one untimed run), its operators
    by total time in a text table: where a slice's time goes on this device (kernels or the host's Python)."""
    from torch.profiler import ProfilerActivity, profile

    index, image, brain, _ = next(iter(chosen_slices(args)))
    polarity = mode_settings(args.mode, args.modality)[0]
    run = partial(fast_heatmap, generator, config, image, brain, step=args.step, device=args.device, polarity=polarity, **fast_options(args))
    final(run())
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device.startswith("cuda") else [])
    with profile(activities=activities) as profiled:
        final(run())
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
    sort_by = "cuda_time_total" if args.device.startswith("cuda") else "cpu_time_total"
    args.profile.write_text(f"fast path, slice {index}, {device_name(args.device)}\n" + profiled.key_averages().table(sort_by=sort_by, row_limit=40))


def volume_to_time(args) -> PreparedScan:
    """The scan of --volume: read from --volume-from, else prepared (brain extraction included) and, with
    --save-volume, saved, so the same scan can be timed where neither ../shared nor deepbet is (a GPU machine)."""
    from napari_inpaint_seg.io import Scan

    if args.volume_from:
        with np.load(args.volume_from) as saved:
            return PreparedScan(Scan(saved["image"], np.eye(4), None), saved["image"], saved["brain"])
    if args.patient:
        prepared = prepare_scan(read_scan(lgg_patient_volume_paths(DATA, args.patient, args.modality)[0]))
    else:
        prepared = next(iter(real_slices(args.modality, 1)))[0] if DATA.is_dir() else synthetic_slice()[0][0]
    if args.save_volume:
        np.savez_compressed(args.save_volume, image=prepared.image, brain=prepared.brain)
    return prepared


def whole_volume(args, generator, config) -> dict:
    prepared = volume_to_time(args)
    polarity, params, selection = mode_settings(args.mode, args.modality)
    middle = prepared.image.shape[2] // 2
    warm_up_seconds = warm_up(args, generator, config, prepared.image[:, :, middle], prepared.brain[:, :, middle], polarity) if args.warm_up else None
    began = time.perf_counter()
    run_to_end(segment_volume(prepared, [(generator, config)], step=args.step, params=params, selection=selection, device=args.device, polarity=polarity))
    seconds = time.perf_counter() - began
    result = {"volume_shape": list(prepared.image.shape), "seconds_volume_fast": seconds, "warm_up_seconds": warm_up_seconds, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}
    if args.device.startswith("cuda"):
        result["peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
    return result


def check_arguments(parser: argparse.ArgumentParser, args) -> None:
    """Refuse what would fail or be ignored only after the model is loaded and slices are read."""
    if args.coarse_factor is not None and (args.coarse_factor < 1 or args.coarse_factor & (args.coarse_factor - 1)):
        parser.error(f"--coarse-factor must be a power of two, got {args.coarse_factor}")
    if args.volume_from and not args.volume_from.is_file():
        parser.error(f"--volume-from {args.volume_from}: no such file")
    if (args.volume_from or args.save_volume) and not args.volume:
        parser.error("--volume-from and --save-volume go with --volume")
    if args.volume_from and args.save_volume:
        parser.error("--save-volume saves a scan prepared here; with --volume-from there is none")
    if args.volume and (args.kept or args.keep or args.slices_from or args.save_slices):
        parser.error("--keep, --kept, --slices-from and --save-slices are for slices; they do not go with --volume")
    if args.slices_from and not args.slices_from.is_file():
        parser.error(f"--slices-from {args.slices_from}: no such file")
    if args.kept and (args.slices_from or args.save_slices):
        parser.error("--kept brings its own slices; it does not go with --slices-from or --save-slices")
    if args.save_slices and (args.slices_from or args.keep or args.profile):
        parser.error("--save-slices only saves the slices it reads from the data")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modality", choices=["t1", "flair"], default="flair")
    parser.add_argument("--gamma", type=int, default=32)
    parser.add_argument("--step", type=int, default=4)
    parser.add_argument("--slices", type=slice_count, default=3,
                        help="how many validation patients to take a tumour slice from, or 'all': every tumour slice (the reference takes 15 s or more each on CPU)")
    parser.add_argument("--per-patient", type=int, default=1, help="with a number of --slices: tumour slices per patient, evenly spread (default: the middle one)")
    parser.add_argument("--patient", help="--volume: this LGG patient's scan instead of the first validation patient's")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--mode", choices=["default", "paper"], default="default",
                        help="rank segments as the CLI's default does (the modality's error sign, tuned selection) or as the paper (absolute error, scale 75, top segment)")
    parser.add_argument("--keep", type=Path, help="save each slice's image, masks, both heatmaps and the reference's time in this folder")
    parser.add_argument("--kept", type=Path, help="compare against the reference heatmaps and times saved by --keep: only the fast path runs")
    parser.add_argument("--coarse-factor", type=int, help="fast path: first stride = this x step (a power of two; default fast_heatmap's)")
    parser.add_argument("--first-period", type=int,
                        help="fast path, windows up to 32 px: the first stage runs one in this many stride-k windows (default fast_heatmap's)")
    parser.add_argument("--refine-fraction", type=float, help="fast path: share of the windows refined at each finer stride")
    parser.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto",
                        help="fast path: the generator's arithmetic (auto: bfloat16 where the hardware makes it fast)")
    parser.add_argument("--volume", action="store_true", help="time a whole scan with the fast path and report peak memory")
    parser.add_argument("--save-volume", type=Path, help="--volume: also save the prepared scan (intensities and brain mask) in this .npz file")
    parser.add_argument("--volume-from", type=Path, help="--volume: time the prepared scan saved by --save-volume instead (no data folder or brain extraction needed)")
    parser.add_argument("--save-slices", type=Path, help="save the chosen slices, prepared, in this .npz file and stop (for --slices-from elsewhere)")
    parser.add_argument("--slices-from", type=Path, help="compare both paths on the slices saved by --save-slices (no data folder or brain extraction needed)")
    parser.add_argument("--profile", type=Path, help="also write a torch.profiler table of the fast path on the first slice to this text file")
    parser.add_argument("--warm-up", action="store_true",
                        help="run the fast path once, untimed, before timing (a GPU's first call sets up its context; reported as warm_up_seconds)")
    args = parser.parse_args()
    check_arguments(parser, args)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.save_slices:
        print(json.dumps(save_slices(args), indent=1))
        return
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    generator, config = load_model(args.model, args.modality, args.gamma, args.device)
    result = {"device": device_name(args.device), "fast_precision": fast_precision(args), "gamma": config.gamma, "step": args.step}
    if args.profile:
        profile_fast_path(args, generator, config)
    result.update(whole_volume(args, generator, config) if args.volume else compare_slices(args, generator, config))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
