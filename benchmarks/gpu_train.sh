#!/usr/bin/env bash
# Training on a lent GPU (issue 14, item 5): the four runs of benchmarks/configs/gpu-*.yaml side
# by side, each sized by benchmarks/gpu_train.py to end before SECONDS (default 480) have passed
# since the start. Run from the repository root with the data sets of
# docs/benchmarks/generation.md in data/ and, where the machine cannot reach a package index,
# the package's dependencies as wheels in .whl/:
#
#   OUT=gpu-out bash benchmarks/gpu_train.sh [SECONDS]
#
# Everything lands in $OUT: one tar per run (float16 model directory, history.json, loss.png),
# gpu-train.json (speeds, steps, validation losses) and train.log.
source benchmarks/_gpu_env.sh
BUDGET=${1:-480}
# four processes on the machine's cores: a few torch threads each, not all of them each
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-3}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "no nvidia-smi"
# the trainer's tests on CUDA (device auto picks it), beside the runs
timeout $((BUDGET - 60)) python3 -m pytest -q -p no:cacheprovider -x tests/test_training.py \
    > "$OUT/pytest.log" 2>&1 &
python3 benchmarks/gpu_train.py benchmarks/configs/gpu-perov5-m64.yaml \
    benchmarks/configs/gpu-perov5-small-continue.yaml benchmarks/configs/gpu-carbon24-m64-augment.yaml \
    benchmarks/configs/gpu-carbon24-m64.yaml --start "$START" --budget "$BUDGET" --out "$OUT" "${@:2}"
wait
tail -3 "$OUT/pytest.log"
ls -la "$OUT"
echo "total $(($(date +%s) - START)) s"
