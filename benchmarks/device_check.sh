#!/usr/bin/env bash
# The GPU figures of docs/performance.md in one call on a machine with a CUDA GPU that has neither ../shared nor
# deepbet nor nibabel (this project's lent GPU machines). Prepare the pack here, on a machine with the data (minutes):
#
#   python benchmarks/bench_localizer.py --modality flair --gamma 32 --slices 12 --per-patient 3 --save-slices .device_pack/slices_36.npz
#   python benchmarks/bench_localizer.py --modality flair --gamma 64 --step 8 --volume --patient TCGA_HT_A61A_20000127 \
#       --save-volume .device_pack/volume_88.npz
#   python -m pip download --no-deps nibabel==5.4.2 -d .device_pack/wheels
#
# then run this there with .device_pack carried: `bash benchmarks/device_check.sh` (`DEVICE=cpu bash
# benchmarks/device_check.sh` dry-runs it anywhere). JSON files land in $OUT (runs/device without it): both paths
# on the 36 slices at γ = 32, k = 4 on the device (seconds, ratio, r, same top segment, Dice; with a profile of
# the fast path on the first slice), the 88-slice scan at both windows (seconds, peak GPU memory), and the fast path
# in float32 against the reference heatmaps the first step kept; each after one untimed warm-up run.
# Exit status 1 if a step failed.
set -uo pipefail  # one measurement failing does not stop the others: device time is short
OUT=${OUT:-runs/device}
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu dry-runs the whole check on any machine
STEP_LIMIT=${STEP_LIMIT:-200}  # seconds per step: a hang in one leaves time for the others
mkdir -p "$OUT"
for needed in .device_pack/slices_36.npz .device_pack/volume_88.npz; do
    [ -e "$needed" ] || { echo "device_check: $needed is missing: prepare .device_pack as the header says and carry it" >&2; exit 2; }
done
export PYTHONPATH="/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if ! python3 -c "import nibabel" 2>/dev/null; then  # the wheel is pure Python: unzipping it is installing it
    mkdir -p /tmp/site && python3 -m zipfile -e .device_pack/wheels/nibabel-*.whl /tmp/site || { echo "device_check: cannot install nibabel" >&2; exit 2; }
fi
if [ "$DEVICE" = cuda ]; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv"; fi
failed=0
step() {  # step NAME ARGS...: one benchmark run, its JSON and log under $OUT; on failure the log's end is shown
    local name=$1; shift
    timeout "$STEP_LIMIT" python3 benchmarks/bench_localizer.py --modality flair --device "$DEVICE" --warm-up "$@" > "$OUT/$name.json" 2> "$OUT/$name.log" && return
    echo "$name: failed or over ${STEP_LIMIT} s; the end of $name.log:" >&2
    tail -n 20 "$OUT/$name.log" >&2
    failed=1
}
KEPT=$(mktemp -d)  # the device's reference heatmaps, for the float32 step; not sent back
step slices_gamma32 --gamma 32 --step 4 --slices-from .device_pack/slices_36.npz --keep "$KEPT" --profile "$OUT/profile_gamma32.txt"
step volume_gamma64 --gamma 64 --step 8 --volume --volume-from .device_pack/volume_88.npz
step volume_gamma32 --gamma 32 --step 4 --volume --volume-from .device_pack/volume_88.npz
step slices_gamma32_float32 --gamma 32 --step 4 --kept "$KEPT" --precision float32
cat "$OUT"/*.json
exit $failed
