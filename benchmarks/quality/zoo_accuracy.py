"""Top-1 accuracy of the offline EfficientNet-Lite0 (tfscorecam.zoo) on real ImageNet photos.

    python -m benchmarks.quality.zoo_accuracy --images ../shared/data/imagenet-dev

Photos: shorter side 256, centre crop 224 (common.load_photo); true class from the file name
``<wnid>_<label>.JPEG`` and the class index json.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.common import DEFAULT_IMAGES, load_photo, photo_paths
from benchmarks.quality.evaluate import true_classes
from tfscorecam import zoo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", default=DEFAULT_IMAGES)
    parser.add_argument("--class-index", default="../shared/data/imagenet_class_index.json")
    parser.add_argument("--n", type=int, default=250)
    args = parser.parse_args()
    lite0 = zoo.efficientnet_lite0()
    paths = photo_paths(args.images, args.n)
    x = lite0.preprocess(np.stack([load_photo(p) for p in paths]))
    predicted = np.argmax(lite0.model.predict(x, batch_size=50, verbose=0), axis=1)
    correct = int((predicted == true_classes(paths, args.class_index)).sum())
    print(
        f"EfficientNet-Lite0 top-1 correct on {correct} of {len(paths)} "
        f"({100 * correct / len(paths):.1f}%)"
    )


if __name__ == "__main__":
    main()
