#!/usr/bin/env bash
# Every GPU figure the docs promise (docs/benchmarks.md), in one run of at most 8 minutes on a lent GPU machine
# (the device tool: `bash benchmarks/speed/gpu.sh`, timeout 600 s):
#   1. Score-CAM images/s and its ratio to the bare-forward floor (bench_scorecam.py);
#   2. Augmented Score-CAM seconds per image, against Score-CAM (bench_asc.py);
#   3. explain_dataset images/s with one actor (bench_dataset.py; needs the dataset extra).
# Data: $SHARED (default: ./shared when the checkout has one, which travels to the device
# machine, else ../shared, which does not) with models/mobilenet_v2_imagenet.weights.h5 and
# data/imagenet-dev. The package runs from this tree (PYTHONPATH): that machine has no network
# to install it. Each step has its own time limit, and one that fails does not stop the others.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SHARED:-}" ]; then
    if [ -d shared ]; then SHARED=shared; else SHARED=../shared; fi
fi
weights="$SHARED/models/mobilenet_v2_imagenet.weights.h5"
images="$SHARED/data/imagenet-dev"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python -c "import tensorflow as tf; print('TensorFlow', tf.__version__, 'GPUs:', tf.config.list_physical_devices('GPU'))"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

step() {  # step SECONDS NAME COMMAND...
    local seconds=$1 name=$2
    shift 2
    echo "== $name"
    timeout "$seconds" "$@" || echo "== $name: failed or timed out (exit $?)"
}
step 200 "Score-CAM against the bare-forward floor" python -m benchmarks.speed.bench_scorecam \
    --weights "$weights" --images "$images" --n 8 --rounds 3 --no-peer
step 120 "Augmented Score-CAM seconds per image" python -m benchmarks.speed.bench_asc \
    --weights "$weights" --images "$images" --n 4 --repeat 2
step 150 "explain_dataset, one actor" python -m benchmarks.speed.bench_dataset \
    --weights "$weights" --images "$images" --n 64 --actors 1
