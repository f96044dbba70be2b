"""Dual encoders (CLIP, SigLIP, MetaCLIP 2) seen through their image embedding, which
``targets.similarity`` scores.

A *dual encoder* is a keras_hub backbone with an image tower and a text tower that meet in one
embedding space: it has ``get_vision_embeddings(images)`` and ``get_text_embeddings(token_ids)``
(keras_hub's ``CLIPBackbone``, ``SigLIPBackbone``, ``MetaCLIP2Backbone``). An explainer given
one without ``output=`` explains its image embedding (batch, D): the vision tower, its pooling
and its projection, over the backbone's own layers. The text tower runs once, outside the
explanation, for the vectors the similarity is taken with (``text_embeddings``).
"""

from __future__ import annotations

import keras
import numpy as np

from tfscorecam.core import backend


def is_dual_encoder(model: object) -> bool:
    """Whether ``model`` is a keras_hub dual encoder (see the module)."""
    return isinstance(model, keras.Model) and all(
        callable(getattr(model, name, None))
        for name in ("get_vision_embeddings", "get_text_embeddings")
    )


def explains_embedding(model: object, output: object) -> bool:
    """Whether an explainer of ``model`` with ``output`` explains its image embedding."""
    return output is None and is_dual_encoder(model)


def _image_input(model: keras.Model) -> keras.KerasTensor:
    images = [t for t in model.inputs if len(t.shape) == 4]
    if len(images) != 1:
        raise ValueError(
            f"{type(model).__name__} has {len(images)} image inputs (batch, H, W, C); "
            "a dual encoder needs exactly one"
        )
    return images[0]


def image_embedding_view(model: keras.Model) -> keras.Model:
    """A model from images to ``model``'s image embedding (batch, D), over its layers."""
    if not is_dual_encoder(model):
        raise ValueError(
            f"{type(model).__name__} is not a dual encoder: it has no get_vision_embeddings "
            "and get_text_embeddings (keras_hub's CLIP, SigLIP and MetaCLIP 2 backbones do)"
        )
    source = _image_input(model)
    images = keras.Input(batch_shape=source.shape, dtype=source.dtype, name="images")
    return keras.Model(
        images, model.get_vision_embeddings(images), name=f"{model.name}_image_embedding"
    )


def text_embeddings(model: keras.Model, token_ids: object) -> np.ndarray:
    """The text tower's embeddings (P, D) float32 of ``token_ids`` (P, L) integers: P prompts
    tokenised by the model's own tokenizer (e.g. ``keras_hub.models.CLIPTokenizer`` or the
    model's preprocessor), to pass to ``targets.similarity``. A dict, as keras_hub's
    tokenizers and preprocessors return, gives its ``"token_ids"``."""
    if isinstance(token_ids, dict):
        if "token_ids" not in token_ids:
            raise ValueError(
                f"a dict of token ids needs the key 'token_ids' (what keras_hub's tokenizers "
                f"and preprocessors return), got keys {sorted(token_ids)}"
            )
        token_ids = token_ids["token_ids"]
    if not is_dual_encoder(model):
        raise ValueError(
            f"{type(model).__name__} has no text tower: text_embeddings takes a keras_hub "
            "CLIP, SigLIP or MetaCLIP 2 backbone"
        )
    ids = np.asarray(token_ids)
    if ids.ndim == 1:
        ids = ids[None]
    if ids.ndim != 2 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            f"token_ids must be integer token ids (prompts, length), got dtype {ids.dtype} "
            f"and shape {ids.shape}; tokenise the prompts with the model's tokenizer first"
        )
    embedded = model.get_text_embeddings(backend.tensor(ids, "int32"))
    return backend.numpy(embedded).astype(np.float32)


def image_embeddings(model: keras.Model, images: object, batch_size: int = 32) -> np.ndarray:
    """The embeddings (N, D) float32 of preprocessed ``images`` (N, H, W, C): the image tower
    of a dual encoder, or any model whose output is an embedding (batch, D). What
    ``targets.similarity`` compares with to explain why two images are alike."""
    view = image_embedding_view(model) if is_dual_encoder(model) else model
    if len(view.outputs) != 1 or len(view.outputs[0].shape) != 2:
        raise ValueError(
            f"{type(model).__name__} does not output one embedding (batch, D); pass a dual "
            "encoder or a model with a single (batch, D) output"
        )
    array = np.asarray(images, np.float32)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C) or (H, W, C), got shape {array.shape}")
    return np.asarray(view.predict(array, batch_size=batch_size, verbose=0), np.float32)
