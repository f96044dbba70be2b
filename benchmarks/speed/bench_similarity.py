"""Score-CAM of CLIP prompts: one prompt against many from the same masked passes, and the
bare forward passes those need.

    python -m benchmarks.speed.bench_similarity                 # ViT-B/32-sized image tower
    python -m benchmarks.speed.bench_similarity --prompts 1,16 --rounds 3

The CLIP is keras_hub's, built from a config with random weights (no CLIP weights can be had
offline here): the image tower of ViT-B/32 (224 px, 12 layers, width 768, so 768 channels to
score at its default layer), a small text tower. Prints, per prompt count P, the seconds of one
explanation (P maps), its ratio to one prompt, and its ratio to the bare forward passes of the
image embedding for the same number of masked images, in batches of the explainer's size.
"""

from __future__ import annotations

import argparse

import keras
import numpy as np

import tfscorecam as tsc
from benchmarks.common import best_seconds, device_line
from tfscorecam import targets
from tfscorecam.core import backend
from tfscorecam.core.embeddings import image_embedding_view, text_embeddings

SIZES = {  # image tower: (hidden, layers, heads, mlp); patch 32 at 224 px: a 7 x 7 grid
    "base": (768, 12, 12, 3072),
    "tiny": (32, 2, 2, 64),
}


def clip(size: str) -> keras.Model:
    """keras_hub's CLIP with a ViT-B/32-sized (or tiny) image tower, random weights."""
    import keras_hub

    hidden, layers, heads, mlp = SIZES[size]
    keras.utils.set_random_seed(0)
    vision = keras_hub.models.CLIPVisionEncoder(
        patch_size=32, hidden_dim=hidden, num_layers=layers, num_heads=heads,
        intermediate_dim=mlp, image_shape=(224, 224, 3),
    )  # fmt: skip
    text = keras_hub.models.CLIPTextEncoder(
        vocabulary_size=1000, embedding_dim=64, hidden_dim=64, num_layers=2, num_heads=2,
        intermediate_dim=128, max_sequence_length=16,
    )  # fmt: skip
    return keras_hub.models.CLIPBackbone(vision, text, projection_dim=64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="base")
    parser.add_argument("--prompts", default="1,16", help="prompt counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-channels", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    model = clip(args.size)
    image = np.random.default_rng(1).uniform(-1, 1, (224, 224, 3)).astype(np.float32)
    counts = [int(p) for p in args.prompts.split(",")]
    tokens = np.random.default_rng(2).integers(1, 1000, (max(counts), 16))
    vectors = text_embeddings(model, tokens)
    cam = tsc.ScoreCAM(
        model, max_channels=args.max_channels, batch_size=args.batch_size, verbose=0
    )
    acts, _ = cam.forward(image[None])
    passes = len(backend.numpy(cam.scorer.selected(acts[0])))
    view = image_embedding_view(model)
    bare = backend.compile(lambda x: view(x, training=False))
    chunks = {n: backend.tensor(np.repeat(image[None], n, 0)) for n in
              {args.batch_size, passes % args.batch_size} if n}  # fmt: skip

    def floor() -> None:
        for start in range(0, passes, args.batch_size):
            backend.numpy(bare(chunks[min(args.batch_size, passes - start)]))

    floor_s = best_seconds(floor, args.rounds)
    print(device_line())
    print(f"CLIP image tower {args.size}, layer {cam.layer_path}, {passes} scored channels; "
          f"bare forward of {passes} masked images: {floor_s:.2f} s")  # fmt: skip
    first = None
    for count in counts:
        target = targets.similarity(vectors[:count])
        took = best_seconds(lambda t=target: cam(image, target=t), args.rounds)
        first = first or took
        print(f"prompts {count:3d}: {took:.2f} s/explanation, {took / first:.3f} of 1 prompt, "
              f"{took / floor_s:.3f} of the bare forward")  # fmt: skip


if __name__ == "__main__":
    main()
