"""Named preprocessings: display-range RGB (0-255) images to a model's input.

Each works on NumPy arrays and on TensorFlow tensors alike (so an exported SavedModel can run
it in its graph), and this module does not import TensorFlow (the command line lists the names
before loading it). The keras.applications names map to the scheme of that family.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_MEAN_TORCH = np.array([0.485, 0.456, 0.406], np.float32)
_STD_TORCH = np.array([0.229, 0.224, 0.225], np.float32)
_MEAN_CAFFE_BGR = np.array([103.939, 116.779, 123.68], np.float32)


def _none(x):
    return x


def _tf(x):
    """[-1, 1]: MobileNet, MobileNetV2/V3 (without their own rescaling), Inception, Xception."""
    return x / 127.5 - 1.0


def _torch(x):
    """[0, 1], then ImageNet mean and standard deviation per channel: DenseNet, PyTorch ports."""
    return (x / 255.0 - _MEAN_TORCH) / _STD_TORCH


def _caffe(x):
    """RGB to BGR, minus the ImageNet mean: ResNet50/101/152 (v1), VGG16/19."""
    return x[..., ::-1] - _MEAN_CAFFE_BGR


def _lite(x):
    """(x - 127) / 128: EfficientNet-Lite."""
    return (x - 127.0) / 128.0


PREPROCESS = {
    "none": _none,
    "tf": _tf,
    "torch": _torch,
    "caffe": _caffe,
    "lite": _lite,
    # keras.applications families
    "mobilenet": _tf,
    "mobilenet_v2": _tf,
    "inception_v3": _tf,
    "xception": _tf,
    "resnet50": _caffe,
    "vgg16": _caffe,
    "densenet": _torch,
    "efficientnet": _none,  # the Keras EfficientNets rescale inside the model
}


def named_preprocess(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The preprocessing called ``name`` (a key of ``PREPROCESS``), or a clear error."""
    if name not in PREPROCESS:
        raise ValueError(f"unknown preprocess {name!r}; choose one of {', '.join(PREPROCESS)}")
    return PREPROCESS[name]
