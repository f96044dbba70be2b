#!/usr/bin/env bash
# Every GPU figure the docs promise (docs/benchmarks.md, docs/backends.md), in one command of at
# most 8 minutes on a lent GPU machine, whose stock image has PyTorch, JAX, SciPy and Pillow but
# no TensorFlow, no Keras and no network. Prepare .gpu/ here first (gpu_carry.sh: Keras' wheels,
# the MobileNetV2 weights, eight photos), then with the device tool:
#     run: bash benchmarks/speed/gpu.sh      carry: [".gpu"]     timeout_s: 600
# For each of JAX and PyTorch (benchmarks/speed/bench_backend.py): images/s of the bare 64-image
# forward pass, exact Score-CAM images/s and its ratio to that floor, Augmented Score-CAM,
# Grad-CAM and Recipro-CAM s/image. The package runs from this tree (PYTHONPATH). A step that
# fails or runs past its limit does not stop the others.
# `gpu.sh --smoke` runs the same steps with random weights, random images and a short timing:
# the end-to-end check on a CPU machine without TensorFlow.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python -m pip install -q --no-index --find-links .gpu/wheels keras h5py 2>&1 | tail -2
KERAS_BACKEND=jax python -c "import keras, sys; print('Python', sys.version.split()[0], 'Keras', keras.__version__)"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU"

if [ "${1:-}" = "--smoke" ]; then
    data=(--weights random --images random --n 2 --rounds 1 --rate-seconds 1 --max-channels 64)
    limit=900
else
    data=(--weights .gpu/mobilenet_v2_imagenet.weights.h5 --images .gpu/photos --n 8 --rounds 3)
    limit=230
fi
for backend in jax torch; do
    echo "== $backend"
    KERAS_BACKEND=$backend timeout "$limit" python -m benchmarks.speed.bench_backend "${data[@]}" \
        || echo "== $backend: failed or timed out (exit $?)"
done
