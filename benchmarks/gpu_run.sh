#!/usr/bin/env bash
# The GPU checks of issue 14, item 7, as one prepared run on a lent CUDA machine (15 minutes of
# device time in all). Run from the repository root with the data sets of
# docs/benchmarks/generation.md in data/ and, where the machine cannot reach a package index,
# the package's dependencies as wheels in .whl/:
#
#   OUT=gpu-out bash benchmarks/gpu_run.sh [SECONDS]
#
# 1. throughput of the small and the paper-size model (benchmarks/bench_gpu.py), alone on the GPU;
# 2. the CUDA tests and the trainer's tests (device "auto" picks CUDA there) and, at the same time,
# 3. warm restarts of the shipped perov5-flow and carbon24-flow (benchmarks/configs/*-continue.yaml
#    with more steps), sized from a short calibration run (benchmarks/gpu_calibrate.py) to end
#    before SECONDS (default 540) have passed since the start.
# Everything lands in $OUT: gpu.json, bench.log, pytest.log, train.log, calibration.txt and one
# tarball per trained model directory.
source benchmarks/_gpu_env.sh
BUDGET=${1:-540}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/bench.log"

# 1. throughput, alone on the device
python3 benchmarks/bench_gpu.py --data data/perov5-val-m12 --json "$OUT/gpu.json" 2>&1 | tee -a "$OUT/bench.log"

# 3a. calibration: both runs at once, as they will run; writes /tmp/gpu-runs/NAME.yaml
python3 benchmarks/gpu_calibrate.py --start "$START" --budget "$BUDGET" --report "$OUT/calibration.txt"
left=$((BUDGET - ($(date +%s) - START) - 45))

# 3b. the runs, and 2. the tests beside them
for name in perov5 carbon24; do
    python3 -m ase_crystalgen train /tmp/gpu-runs/$name.yaml > /tmp/train-$name.log 2>&1 &
done
timeout $((left + 20)) python3 -m pytest -q -p no:cacheprovider -rs tests/test_training.py \
    tests/test_generative.py tests/test_inference.py > "$OUT/pytest.log" 2>&1
echo "pytest exit $?" >> "$OUT/pytest.log"
wait
for name in perov5 carbon24; do
    { echo "== $name"; tail -5 /tmp/train-$name.log; } >> "$OUT/train.log"
    if [ -d runs/$name-flow-gpu/model ]; then
        tar czf "$OUT/$name-flow-gpu.tar.gz" runs/$name-flow-gpu/model runs/$name-flow-gpu/history.json
    fi
done
tail -4 "$OUT/pytest.log"
cat "$OUT/train.log"
echo "total $(($(date +%s) - START)) s"
