"""Train one inpainting generator (Algorithm 1 of the paper) for a window side gamma.

Single process:
    python training_scripts/train.py --pack .cache/slices_flair.npz --modality flair --gamma 32 --out runs/flair32
Several GPUs / nodes (DistributedDataParallel; each process draws its own batches):
    torchrun --nproc_per_node 4 training_scripts/train.py --pack ... --out runs/flair32
Data may also come straight from sources: --lgg DIR --patients FILE, --images DIR, --volumes DIR.
Re-running the same command resumes from runs/.../state.pt (--iterations and --max-minutes may change).
Fine-tuning: --init-from shipped (or a generator's file) starts G from trained weights, e.g. on your own healthy scans.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from napari_inpaint_seg.device import DEVICES, pick_device
from napari_inpaint_seg.errors import InputError
from napari_inpaint_seg.models.config import MODALITIES, resolve_model
from napari_inpaint_seg.training.arguments import add_slice_source_arguments, input_errors_exit, positive_float, positive_int
from napari_inpaint_seg.training.data import gather_slices
from napari_inpaint_seg.training.loop import TrainConfig, check_config, train


def build_parser() -> argparse.ArgumentParser:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="train.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", type=Path, help=".npz made by pack_slices.py")
    add_slice_source_arguments(parser)
    parser.add_argument("--modality", choices=MODALITIES, required=True, help="modality of the slices; must match a pack that records one")
    parser.add_argument("--gamma", type=positive_int, default=defaults.gamma, help="window (hole) side in pixels (default: %(default)s)")
    parser.add_argument("--iterations", type=positive_int, default=defaults.iterations, help="total training iterations (default: %(default)s)")
    parser.add_argument("--batch-size", type=positive_int, default=defaults.batch_size, help="crops per iteration and process (default: %(default)s)")
    parser.add_argument("--lr-generator", type=positive_float, default=defaults.lr_generator, help="Adam learning rate of G (default: %(default)s)")
    parser.add_argument("--lr-discriminator", type=positive_float, default=defaults.lr_discriminator, help="Adam learning rate of D (default: %(default)s)")
    parser.add_argument("--base-channels", type=positive_int, default=defaults.base_channels, help="channels of the UNet's first level (default: %(default)s)")
    parser.add_argument("--depth", type=positive_int, default=defaults.depth, help="UNet levels (default: %(default)s)")
    parser.add_argument("--downsample", type=positive_int, default=defaults.downsample, help="UNet works at 1/downsample resolution (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the weights and the crops (default: %(default)s)")
    parser.add_argument("--checkpoint-every", type=positive_int, default=defaults.checkpoint_every, help="iterations between checkpoints (default: %(default)s)")
    parser.add_argument("--max-minutes", type=positive_float, help="stop at a checkpoint after this long (resume later)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="auto: a GPU when there is one (default: %(default)s)")
    parser.add_argument("--init-from", metavar="MODEL", help="start G from this generator's weights instead of random ones (fine-tuning; same window, "
                        "modality and architecture; D starts afresh), or 'shipped': the shipped model for --modality and --gamma")
    parser.add_argument("--out", type=Path, required=True, help="run folder: state.pt, log.csv, generator.safetensors")
    return parser


def train_config(args: argparse.Namespace) -> TrainConfig:
    # the starting generator's window and modality are checked here, before any slice is read
    init_from, init_config = resolve_model(None if args.init_from == "shipped" else args.init_from, args.modality, args.gamma) if args.init_from else ("", None)
    return TrainConfig(
        gamma=args.gamma,
        modality=args.modality,
        iterations=args.iterations,
        batch_size=args.batch_size,
        lr_generator=args.lr_generator,
        lr_discriminator=args.lr_discriminator,
        base_channels=args.base_channels,
        depth=args.depth,
        downsample=args.downsample,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        init_from=str(init_from),
        init_iterations=init_config.iterations if init_config else 0,
    )


def run(args: argparse.Namespace, distributed: bool) -> Path:
    """Check everything cheap first (settings, device), then gather the slices and train."""
    cfg = train_config(args)
    check_config(cfg)
    device = pick_device(args.device)
    if distributed:
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
        if device == "cuda":
            device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
            torch.cuda.set_device(device)
    slices = gather_slices(args.modality, pack=args.pack, lgg=args.lgg, patients=args.patients, images=args.images, volumes=args.volumes, cache_dir=args.cache, tumour_margin=args.tumour_margin)
    if not len(slices):
        raise InputError("no training slices: give --pack, --lgg with --patients, --images or --volumes")
    max_seconds = args.max_minutes * 60 if args.max_minutes is not None else None
    return train(cfg, slices, args.out, device=device, max_seconds=max_seconds)


def calibration_command(generator: Path, pack: Path | None) -> str:
    """The command that fits the no-tumour decision to the new weights, which the shipped model's does not fit."""
    healthy = pack if pack is not None else "HEALTHY_SLICES.npz (training_scripts/pack_slices.py)"
    return f"python training_scripts/calibrate_decision.py --model {generator} --pack {healthy}"


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    distributed = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    with input_errors_exit(parser):
        path = run(args, distributed)
    if not distributed or dist.get_rank() == 0:
        print(f"generator: {path}")
        print(f"next: calibrate its no-tumour decision (docs/training.md): {calibration_command(path, args.pack)}")
    if distributed:
        dist.barrier()  # every rank is done with the group before any tears it down
        dist.destroy_process_group()
        # Gloo's worker threads can abort the process during interpreter teardown (pytorch/pytorch PR 179291,
        # "terminate called without an active exception"), failing a finished run; everything is written by
        # now, so leave without that teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
