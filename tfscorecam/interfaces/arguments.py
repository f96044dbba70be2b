"""The command line's argument types (``positive``, ``regression_target``, ``feed``) and the
method options its flags make (``method_options_of``), checked against the method's class."""

from __future__ import annotations

import argparse
import ast

import numpy as np

from tfscorecam.methods import method_options


def positive(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def regression_target(text: str) -> tuple[int, bool]:
    """argparse type: ``regression:INDEX[:negate]`` as (INDEX, negate), made a
    ``targets.regression`` once TensorFlow is loaded."""
    kind, _, rest = text.partition(":")
    index, _, flag = rest.partition(":")
    if kind != "regression" or not index.lstrip("-").isdigit() or flag not in ("", "negate"):
        raise argparse.ArgumentTypeError(
            f"expected regression:INDEX or regression:INDEX:negate, got {text!r}"
        )
    return int(index), flag == "negate"


def feed(text: str) -> tuple[str, np.ndarray]:
    """``NAME=FILE.npy`` -> (name, the array in the file)."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path.endswith(".npy"):
        raise argparse.ArgumentTypeError(f"expected NAME=FILE.npy, got {text!r}")
    try:
        return name, np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {error}") from None


def literal(text: str) -> object:
    """A --option value: a Python literal (number, bool, None, list...) or else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def method_options_of(args) -> dict:
    """The method's options from --max-channels, --num-samples, --num-augmentations, --batch-size
    and --option KEY=VALUE, each checked against the method's signature."""
    options = {}
    for pair in args.option:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--option takes KEY=VALUE, got {pair!r}")
        options[key.strip().replace("-", "_")] = literal(text.strip())
    named = {
        "max_channels": args.max_channels,
        "num_samples": args.num_samples,
        "num_augmentations": args.num_augmentations,
    }
    if args.command != "explain-dataset":
        named["batch_size"] = args.batch_size
    options.update({k: v for k, v in named.items() if v is not None})
    accepted = method_options(args.method)
    for key in options:
        if key not in accepted or key in ("verbose", "layer"):
            raise ValueError(
                f"{args.method} has no option {key!r}; its options: "
                f"{', '.join(k for k in accepted if k != 'verbose')}"
            )
    return options
