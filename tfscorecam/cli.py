"""Command line: ``tfscorecam explain IMAGE... --model ...`` and ``tfscorecam demo``."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

from tfscorecam.methods import METHODS
from tfscorecam.preprocessing import PREPROCESS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        """A usage error is one line on stderr and exit status 2."""
        self.exit(2, f"tfscorecam: error: {message} (see tfscorecam --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tfscorecam", description="Explain Keras CNNs.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    explain = commands.add_parser("explain", help="explain images, write overlay PNGs")
    explain.add_argument("images", nargs="+", help="image files")
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
        sub.add_argument(
            "--method",
            default="scorecam",
            choices=list(METHODS),
        )
        sub.add_argument("--layer", help="target layer name or path (default: the last conv)")
        sub.add_argument("--out", default="tfscorecam_out", help="output folder")
        sub.add_argument("--batch-size", type=int, default=64)
        sub.add_argument("--quiet", action="store_true", help="no progress bar")
    explain.add_argument(
        "--class",
        dest="class_",
        action="append",
        help="class index or name to explain (repeatable; default: top-1)",
    )
    explain.add_argument("--top-k", type=int, help="explain the K most probable classes")
    explain.add_argument(
        "--output",
        help="for a model with several outputs: the name or index of the class output to explain",
    )
    data = commands.add_parser(
        "explain-dataset", help="explain a folder, glob or list of images with Ray; Parquet out"
    )
    data.add_argument("inputs", nargs="+", help="a folder, a glob pattern, or image files")
    data.add_argument(
        "--model", default="efficientnet_lite0", help="a .keras/.h5 file or a zoo name"
    )
    data.add_argument("--out", required=True, help="output folder (Parquet; reruns resume)")
    data.add_argument("--method", default="scorecam", choices=list(METHODS))
    data.add_argument("--preprocess", choices=list(PREPROCESS), help="for a model file")
    data.add_argument("--layer", help="target layer name or path (default: the last conv)")
    data.add_argument("--class", dest="class_", type=int, help="class index (default: top-1)")
    data.add_argument("--actors", type=int, help="model replicas (default: one per GPU, else 1)")
    data.add_argument("--address", help='Ray cluster to join ("auto", "ray://host:10001")')
    data.add_argument("--batch-size", type=int, default=8, help="images per batch and file")
    data.add_argument("--overlays", action="store_true", help="also write overlay PNGs")
    data.add_argument("--quiet", action="store_true", help="no progress line")
    return parser


def _run_explain_dataset(args) -> int:
    from tfscorecam import dataset

    options = {"layer": args.layer} if args.layer else {}
    inputs = args.inputs[0] if len(args.inputs) == 1 else args.inputs
    summary = dataset.explain_dataset(
        args.model,
        inputs,
        args.out,
        args.method,
        preprocess=args.preprocess,
        class_index=args.class_,
        actors=args.actors,
        address=args.address,
        batch_size=args.batch_size,
        verbose=0 if args.quiet else 1,
        **options,
    )
    print(
        f"{summary['explained']} explained, {summary['errors']} errors, {summary['skipped']} "
        f"already done, of {summary['total']} images ({summary['images_per_second']:.2f} "
        f"images/s) -> {args.out}"
    )
    if args.overlays:
        print(f"{dataset.write_overlays(args.out)} overlays -> {Path(args.out) / 'overlays'}")
    return 0


def _classes(args, zoo_model) -> list | None:
    """class_index for one image: from --class (indices or class names), else None."""
    if args.class_ and args.top_k:
        raise ValueError("give --class or --top-k, not both")
    if args.class_:
        indices = []
        for value in args.class_:
            if value.lstrip("-").isdigit():
                indices.append(int(value))
            elif value in zoo_model.class_names:
                indices.append(zoo_model.class_names.index(value))
            else:
                raise ValueError(f"unknown class {value!r}: give an index or a class name")
        return [indices]
    return None


def _run_explain(args) -> int:
    import numpy as np

    from tfscorecam import zoo
    from tfscorecam.explanation import explain
    from tfscorecam.images import image_list, resize
    from tfscorecam.methods import cached_explainer

    zoo_model = zoo.load(args.model, args.weights, args.preprocess)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    options = {"batch_size": args.batch_size, "verbose": 0 if args.quiet else 1}
    if args.output is not None:
        options["output"] = int(args.output) if args.output.lstrip("-").isdigit() else args.output
    for path in args.images:
        images, _ = image_list(path)
        class_index = _classes(args, zoo_model)
        if args.top_k:
            size = zoo_model.input_size
            x = zoo_model.preprocess(resize(images[0], size)[None])
            cam = cached_explainer(zoo_model.model, args.method, args.layer, **options)
            class_index = [np.argsort(-cam.predict_probabilities(x)[0])[: args.top_k]]
        start = time.perf_counter()
        results = explain(
            zoo_model,
            images[0][None],
            args.method,
            layer=args.layer,
            class_index=class_index,
            **options,
        )
        seconds = time.perf_counter() - start
        for result in results:
            name = (result.class_name or str(result.class_index)).replace(" ", "_")
            target = out / f"{Path(path).stem}_{args.method}_{result.class_index}_{name}.png"
            result.save(target)
            print(f"{path}: {result.label} ({seconds:.1f} s) -> {target}")
    return 0


def _run_demo(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from tfscorecam import zoo
    from tfscorecam.explanation import explain

    zoo_model = zoo.efficientnet_lite0()
    start = time.perf_counter()
    result = explain(
        zoo_model,
        zoo.DEMO_IMAGE,
        args.method,
        layer=args.layer,
        batch_size=args.batch_size,
        verbose=0 if args.quiet else 1,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"demo_{args.method}.png"
    result.plot().savefig(target, dpi=100)
    seconds = time.perf_counter() - start
    print(f"{zoo.DEMO_IMAGE.name}: {result.label} ({seconds:.1f} s) -> {target}")
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
        except (ValueError, TypeError, OSError, ImportError, KeyError) as error:
            print(f"tfscorecam: error: {error}", file=sys.stderr)
            return 1
