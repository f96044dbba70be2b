#!/usr/bin/env bash
# Prepare what gpu.sh needs on the lent GPU machine, which has PyTorch, JAX, SciPy and Pillow
# but no Keras, no TensorFlow and no network: .gpu/ (ignored by git, carried by the device
# tool: carry [".gpu"]) gets Keras and the wheels it needs that such an image lacks, for
# CPython 3.10 to 3.13, the MobileNetV2 weights and eight photos from $SHARED (default
# ../shared). About 25 MiB.
set -euo pipefail
cd "$(dirname "$0")/../.."
shared="${SHARED:-../shared}"
rm -rf .gpu && mkdir -p .gpu/wheels .gpu/photos
pure="keras namex rich markdown-it-py mdurl pygments absl-py packaging typing-extensions"
pip download -q --no-deps -d .gpu/wheels $pure
for version in 3.10 3.11 3.12 3.13; do
    pip download -q --no-deps --only-binary=:all: --python-version "$version" \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d .gpu/wheels optree h5py
done
cp "$shared/models/mobilenet_v2_imagenet.weights.h5" .gpu/
ls "$shared/data/imagenet-dev"/*.JPEG | head -8 | xargs -I{} cp {} .gpu/photos/
du -sh .gpu
