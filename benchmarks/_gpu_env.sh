# Sourced by benchmarks/gpu_run.sh and gpu_train.sh on a lent GPU machine: checks $OUT, starts
# the clock, and puts the package (and the wheels carried in .whl/, where the machine cannot
# reach a package index) on PYTHONPATH.
set -u
START=$(date +%s)
OUT=${OUT:?set OUT to a folder for the results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
