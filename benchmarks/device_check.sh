#!/usr/bin/env bash
# The GPU figures of docs/performance.md in one call on a machine with a CUDA GPU that has neither ../shared nor
# deepbet nor nibabel (this project's lent GPU machines). Prepare the pack here, on a machine with the data:
#
#   python benchmarks/bench_localizer.py --modality flair --gamma 32 --slices 12 --per-patient 3 --keep .device_pack/keep_36
#   python benchmarks/bench_localizer.py --modality flair --gamma 64 --step 8 --volume --patient TCGA_HT_A61A_20000127 \
#       --save-volume .device_pack/volume_88.npz
#   python -m pip download --no-deps nibabel==5.4.2 -d .device_pack/wheels
#
# (the first keeps the CPU reference's heatmaps: about an hour on 2 cores), then run this there with .device_pack
# carried: `bash benchmarks/device_check.sh`. JSON files land in $OUT (runs/device without it): the fast path per
# slice against the kept CPU reference (seconds, r, same top segment, Dice), and the 88-slice scan at both windows
# (seconds, peak GPU memory). No ratio on the GPU: the kept reference ran on the CPU.
set -uo pipefail  # one measurement failing does not stop the others: device time is short
OUT=${OUT:-runs/device}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .device_pack/wheels/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv"
bench=(python3 benchmarks/bench_localizer.py --modality flair --device cuda)
"${bench[@]}" --gamma 32 --step 4 --kept .device_pack/keep_36 > "$OUT/slices_gamma32.json" 2> "$OUT/slices_gamma32.log" ||
    echo "slices, gamma 32: failed (see slices_gamma32.log)"
for window in "32 4" "64 8"; do
    read -r gamma step <<< "$window"
    "${bench[@]}" --gamma "$gamma" --step "$step" --volume --volume-from .device_pack/volume_88.npz > "$OUT/volume_gamma$gamma.json" 2> "$OUT/volume_gamma$gamma.log" ||
        echo "volume, gamma $gamma: failed (see volume_gamma$gamma.log)"
done
cat "$OUT"/*.json
