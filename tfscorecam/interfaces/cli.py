"""Command line: ``tfscorecam explain IMAGE... --model ...`` and ``tfscorecam demo``."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings
from pathlib import Path
from typing import NoReturn

from tfscorecam.core.install import backend_missing
from tfscorecam.interfaces.arguments import feed, method_options_of, positive, regression_target
from tfscorecam.methods import METHODS
from tfscorecam.version import __version__
from tfscorecam.zoo.preprocessing import PREPROCESS

CLI_PASSES = 1280  # masked passes above which the cost is noted (one Score-CAM of 1280 channels)


def error_line(text: str) -> None:
    """An error as the command line reports it: one line on stderr."""
    print(f"tfscorecam: error: {text}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A usage error is one line on stderr and exit status 2."""
        error_line(f"{message} (see tfscorecam --help)")
        self.exit(2)


def _add_method_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", default="scorecam", choices=list(METHODS))
    parser.add_argument("--layer", help="target layer name or path (default: the last conv)")
    parser.add_argument(
        "--max-channels", type=positive, help="score only the N most varied channels"
    )
    parser.add_argument(
        "--num-samples", type=positive, help="iscam / sscam: masked passes per channel"
    )
    parser.add_argument(
        "--num-augmentations", type=positive, help="augmented: at most this many views"
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other option of the method's class, e.g. --option score=logit (repeatable)",
    )
    parser.add_argument(
        "--class-names", help="class names: a JSON list or object, or a text file (one a line)"
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tfscorecam", description="Explain Keras CNNs.")
    parser.add_argument("--version", action="version", version=f"tfscorecam {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    explain = commands.add_parser("explain", help="explain images, write overlay PNGs")
    explain.add_argument(
        "images", nargs="+", help="image files (.npy arrays for a model on volumes or video)"
    )
    explain.add_argument(
        "--model",
        default="efficientnet_lite0",
        help="efficientnet_lite0 (offline, default), a .keras/.h5 model file, or a "
        "keras.applications name such as MobileNetV2",
    )
    explain.add_argument("--weights", help="weights file for a keras.applications model")
    explain.add_argument(
        "--preprocess",
        choices=list(PREPROCESS),
        default="none",
        help="preprocessing for a model file (default: none)",
    )
    demo = commands.add_parser("demo", help="explain a bundled CC0 photo with the offline model")
    for sub in (explain, demo):
        _add_method_options(sub)
        sub.add_argument("--out", default="tfscorecam_out", help="output folder")
        sub.add_argument(
            "--batch-size", type=positive, help="images per forward pass (method default)"
        )
        sub.add_argument("--quiet", action="store_true", help="no progress bar")
    explain.add_argument(
        "--class",
        dest="class_",
        action="append",
        help="class index or name to explain (repeatable; default: top-1)",
    )
    explain.add_argument("--top-k", type=positive, help="explain the K most probable classes")
    explain.add_argument(
        "--target",
        type=regression_target,
        help="instead of a class, a target: regression:INDEX (the model's regression output "
        "INDEX) or regression:INDEX:negate (its negative, for a negative value)",
    )
    explain.add_argument(
        "--output",
        help="for a model with several outputs: the name or index of the class output to explain",
    )
    explain.add_argument(
        "--input",
        help="for a model with several image inputs: the name of the one to explain",
    )
    explain.add_argument(
        "--feed",
        action="append",
        type=feed,
        metavar="NAME=FILE.npy",
        help="a multi-input model's other input NAME: one value for every image, or one per "
        "image in the order given (repeatable, one per other input)",
    )
    explain.add_argument(
        "--head",
        choices=["auto", "softmax", "sigmoid", "logits"],
        default="auto",
        help="what the class output is (default: read from its last layer)",
    )
    data = commands.add_parser(
        "explain-dataset", help="explain a folder, glob or list of images with Ray; Parquet out"
    )
    data.add_argument("inputs", nargs="+", help="a folder, a glob pattern, or image files")
    data.add_argument(
        "--model",
        default="efficientnet_lite0",
        help="efficientnet_lite0 (default), a .keras/.h5 file or a keras.applications name",
    )
    data.add_argument("--weights", help="weights file for a keras.applications model")
    data.add_argument("--out", required=True, help="output folder (Parquet; reruns resume)")
    _add_method_options(data)
    data.add_argument("--preprocess", choices=list(PREPROCESS), help="for a model file")
    data.add_argument("--class", dest="class_", help="class index or name (default: top-1)")
    data.add_argument(
        "--actors", type=positive, help="model replicas (default: one per GPU, else 1)"
    )
    data.add_argument("--address", help='Ray cluster to join ("auto", "ray://host:10001")')
    data.add_argument("--batch-size", type=positive, default=8, help="images per batch and file")
    data.add_argument("--overlays", action="store_true", help="also write overlay PNGs")
    data.add_argument("--quiet", action="store_true", help="no progress line")
    return parser


def _cost_note(model, method: str, layer, options: dict) -> str | None:
    """For a method with several passes per channel (its registry entry's ``passes`` option)
    over more than ``CLI_PASSES`` passes in all and no --max-channels, the line that says what
    it costs and how to cut it. The command line runs the method as Python does (every
    channel, as the authors' code)."""
    passes = METHODS[method].passes
    if passes is None or "max_channels" in options:
        return None
    from tfscorecam.methods import cached_explainer, method_class

    samples = int(options.get(passes, method_class(method).option_defaults()[passes]))
    channels = cached_explainer(model, method, layer, **options).num_channels
    if channels is None or channels * samples <= CLI_PASSES:
        return None
    cut = max(1, CLI_PASSES // samples)
    return (
        f"tfscorecam: {method} scores all {channels} channels with {samples} masked passes "
        f"each ({channels * samples} passes, {samples} times one Score-CAM); --max-channels "
        f"{cut} scores only the {cut} with the largest spatial variation (about one Score-CAM)"
    )


def _run_explain_dataset(args) -> int:
    from tfscorecam.interfaces import dataset

    options = method_options_of(args)
    if args.layer:
        options["layer"] = args.layer
    inputs = args.inputs[0] if len(args.inputs) == 1 else args.inputs
    summary = dataset.explain_dataset(
        args.model,
        inputs,
        args.out,
        args.method,
        weights=args.weights,
        preprocess=args.preprocess,
        class_index=args.class_,
        class_names=args.class_names,
        actors=args.actors,
        address=args.address,
        batch_size=args.batch_size,
        verbose=0 if args.quiet else 1,
        **options,
    )
    print(
        f"{summary['explained']} explained ({summary['warnings']} with warnings), "
        f"{summary['errors']} errors, {summary['skipped']} already done, of {summary['total']} "
        f"images ({summary['images_per_second']:.2f} images/s) -> {args.out}"
    )
    if summary["warnings"] or summary["errors"]:
        print(
            "tfscorecam: see the rows' warning and error columns: "
            f"from tfscorecam.dataset import read_results; read_results({str(args.out)!r})",
            file=sys.stderr,
        )
    if args.overlays:
        print(f"{dataset.write_overlays(args.out)} overlays -> {Path(args.out) / 'overlays'}")
    if summary["errors"]:
        error_line(f"{summary['errors']} images failed")
    return 1 if summary["errors"] else 0


def _classes(args, names: list | None) -> list | None:
    """class_index for one image: from --class (indices or class names), else None."""
    from tfscorecam.zoo.class_names import class_index_of

    if args.class_ and args.top_k:
        raise ValueError("give --class or --top-k, not both")
    if args.class_:
        return [[class_index_of(value, names) for value in args.class_]]
    return None


def _image(path: str):
    """One display image from a path (a ``.npy`` file: its array, a volume for a model on
    volumes or video), with the fix for a folder."""
    from tfscorecam.interfaces.images import display_image
    from tfscorecam.interfaces.volumes import load_volume

    if Path(path).is_dir():
        raise ValueError(
            f"{path} is a folder: explain takes image files; for a folder use "
            f"`tfscorecam explain-dataset {path} --out OUT`"
        )
    return load_volume(path) if Path(path).suffix.lower() == ".npy" else display_image(path)


def _out_folder(out: str) -> Path:
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for the overlay PNGs")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _named(text: str, path: str) -> str:
    """A message about the one image (or volume) of a call, naming its file."""
    text = text.replace("image 0", path).replace("volume 0", path)
    return text if path in text else f"{path}: {text}"


def _run_explain(args) -> int:
    from tfscorecam.core.inputs import value_for
    from tfscorecam.core.targets import regression, top_k
    from tfscorecam.interfaces.explanation import explain
    from tfscorecam.interfaces.filenames import distinct_stems, overlay_name
    from tfscorecam.zoo.models import load

    out = _out_folder(args.out)
    zoo_model = load(args.model, args.weights, args.preprocess or "none", args.class_names)
    options = {**method_options_of(args), "verbose": 0 if args.quiet else 1}
    output = None
    if args.output is not None:
        output = int(args.output) if args.output.lstrip("-").isdigit() else args.output
        options["output"] = output
    if args.head != "auto":
        options["head"] = args.head
    if args.input is not None:
        options["input"] = args.input
    feeds = dict(args.feed or [])
    target: object = None
    target_label = "target"
    if args.target is not None:
        if args.class_ or args.top_k:
            raise ValueError("give --target, or --class / --top-k, not both")
        target = regression(*args.target)
        index, negate = args.target
        target_label = f"regression-{index}{'-negate' if negate else ''}"
    elif args.top_k:
        target = top_k(args.top_k)
    note = _cost_note(zoo_model.model, args.method, args.layer, options)
    if note:
        print(note, file=sys.stderr)
    failures = 0
    images = list(zip(args.images, distinct_stems(args.images), strict=True))
    for index, (path, stem) in enumerate(images):
        try:
            inputs = {
                name: value_for(zoo_model.model, name, values, index, len(images))
                for name, values in feeds.items()
            }
            image = _image(path)
            class_index = _classes(args, zoo_model.class_names)
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                explained = explain(
                    zoo_model,
                    image[None],
                    args.method,
                    layer=args.layer,
                    class_index=class_index,
                    target=target,
                    inputs=inputs or None,
                    **options,
                )
                results = explained if isinstance(explained, list) else [explained]
            for warning in caught:
                text = _named(str(warning.message), path)
                print(f"tfscorecam: warning: {text}", file=sys.stderr)
        except (ValueError, TypeError, OSError, KeyError, MemoryError) as error:
            error_line(_named(str(error), path))
            failures += 1
            continue
        seconds = f" ({time.perf_counter() - start:.1f} s)"
        for result in results:  # the time once per image: its classes share the passes
            name = overlay_name(
                stem, args.method, output, result.class_index, result.class_name, target_label
            )
            replaced = " (replaced an earlier file)" if (out / name).exists() else ""
            result.save(out / name)
            print(f"{path}: {result.label}{seconds} -> {out / name}{replaced}")
            seconds = ""
    if failures and len(args.images) > 1:
        error_line(f"{failures} of {len(args.images)} images failed")
    return 1 if failures else 0


def _run_demo(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from tfscorecam.interfaces.explanation import explain
    from tfscorecam.zoo.models import DEMO_IMAGE, efficientnet_lite0

    zoo_model = efficientnet_lite0()
    options = {**method_options_of(args), "verbose": 0 if args.quiet else 1}
    note = _cost_note(zoo_model.model, args.method, args.layer, options)
    if note:
        print(note, file=sys.stderr)
    start = time.perf_counter()
    explained = explain(
        zoo_model,
        DEMO_IMAGE,
        args.method,
        layer=args.layer,
        class_names=args.class_names,
        **options,
    )
    result = explained[0] if isinstance(explained, list) else explained
    out = _out_folder(args.out)
    target = out / f"demo_{args.method}.png"
    result.plot().savefig(target, dpi=100)
    seconds = time.perf_counter() - start
    print(f"{DEMO_IMAGE.name}: {result.label} ({seconds:.1f} s) -> {target}")
    return 0


@contextlib.contextmanager
def _native_logs_silenced():
    """Send the C++ libraries' stderr (TensorFlow's start-up log) to /dev/null, keeping
    Python's own stderr on the terminal. TensorFlow reads TF_CPP_MIN_LOG_LEVEL only from the
    environment the process started with, so setting it here would not help."""
    if "tensorflow" in sys.modules:  # already loaded (e.g. called from Python): nothing to hide
        yield
        return
    sys.stderr.flush()
    terminal = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    python_stderr = sys.stderr
    sys.stderr = os.fdopen(os.dup(terminal), "w", buffering=1)
    try:
        yield
    finally:
        sys.stderr.close()
        sys.stderr = python_stderr
        os.dup2(terminal, 2)
        os.close(terminal)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; errors are one line on stderr and exit status 1."""
    args = _parser().parse_args(argv)
    with _native_logs_silenced():
        try:
            runs = {
                "demo": _run_demo,
                "explain": _run_explain,
                "explain-dataset": _run_explain_dataset,
            }
            return runs[args.command](args)
        except (
            ValueError,
            TypeError,
            OSError,
            ImportError,
            KeyError,
            RuntimeError,
            MemoryError,
        ) as error:
            missing = backend_missing(error) if isinstance(error, ImportError) else None
            error_line(str(missing or error))
            return 1
