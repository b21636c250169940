"""Train one inpainting generator (Algorithm 1 of the paper) for a window side gamma.

Single process:
    python training_scripts/train.py --pack .cache/slices_flair.npz --modality flair --gamma 32 --out runs/flair32
Several GPUs / nodes (DistributedDataParallel; each process draws its own batches):
    torchrun --nproc_per_node 4 training_scripts/train.py --pack ... --out runs/flair32
Data may also come straight from sources: --lgg DIR --patients FILE, --images DIR, --volumes DIR.
Re-running the same command resumes from runs/.../state.pt.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from napari_inpaint_seg.training.data import SliceSet, image_folder_slices, lgg_tumour_free_slices, load_slice_pack, nifti_folder_slices
from napari_inpaint_seg.training.loop import TrainConfig, train


def gather_slices(args: argparse.Namespace) -> SliceSet:
    slices = SliceSet([], [])
    if args.pack:
        slices.extend(load_slice_pack(args.pack))
    if args.lgg:
        patients = [line.strip() for line in args.patients.read_text().splitlines() if line.strip()]
        slices.extend(lgg_tumour_free_slices(args.lgg, patients, args.modality, args.cache))
    if args.images:
        slices.extend(image_folder_slices(args.images))
    if args.volumes:
        slices.extend(nifti_folder_slices(args.volumes, args.cache))
    if not len(slices):
        raise SystemExit("no training slices: give --pack, --lgg with --patients, --images or --volumes")
    return slices


def main() -> None:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", type=Path, help=".npz made by pack_slices.py")
    parser.add_argument("--lgg", type=Path)
    parser.add_argument("--patients", type=Path)
    parser.add_argument("--images", type=Path)
    parser.add_argument("--volumes", type=Path)
    parser.add_argument("--cache", type=Path, default=Path(".cache/brain"))
    parser.add_argument("--modality", choices=["t1", "flair"], required=True)
    parser.add_argument("--gamma", type=int, default=defaults.gamma)
    parser.add_argument("--iterations", type=int, default=defaults.iterations)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr-generator", type=float, default=defaults.lr_generator)
    parser.add_argument("--lr-discriminator", type=float, default=defaults.lr_discriminator)
    parser.add_argument("--base-channels", type=int, default=defaults.base_channels)
    parser.add_argument("--depth", type=int, default=defaults.depth)
    parser.add_argument("--downsample", type=int, default=defaults.downsample, help="UNet works at 1/downsample resolution")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    parser.add_argument("--max-minutes", type=float, help="stop at a checkpoint after this long (resume later)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    distributed = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    device = args.device
    if distributed:
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
        if device.startswith("cuda"):
            device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
            torch.cuda.set_device(device)
    cfg = TrainConfig(
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
    )
    slices = gather_slices(args)
    max_seconds = args.max_minutes * 60 if args.max_minutes else None
    path = train(cfg, slices, args.out, device=device, max_seconds=max_seconds)
    if not distributed or dist.get_rank() == 0:
        print(f"generator: {path}")
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
