"""Class names: from lists and files, names standing for indices, ImageNet's by default."""

import json

import pytest
from conftest import BACKBONE_SIDE, build_classifier
from references import random_photo, save_random_photo

import tfscorecam as tsc
from tfscorecam import zoo
from tfscorecam.interfaces import cli


def test_class_names_from_lists_and_files_and_names_as_classes(tmp_path, capsys):
    model = build_classifier("softmax", flat_channel=False)
    names = ["ant", "bee", "cat", "dog", "eel"]
    as_text = tmp_path / "names.txt"
    as_text.write_text("\n".join(names) + "\n")
    as_json = tmp_path / "names.json"
    as_json.write_text(json.dumps({str(i): ["wnid", n] for i, n in enumerate(names)}))
    photo = random_photo()
    for source in (names, as_text, str(as_json)):
        result = tsc.explain(model, photo, class_index="dog", class_names=source, verbose=0)
        assert (result.class_index, result.class_name) == (3, "dog")
    both = tsc.explain(model, photo, class_index=["cat", 4], class_names=names, verbose=0)
    assert [e.class_name for e in both] == ["cat", "eel"]
    with pytest.raises(ValueError, match="unknown class 'dgo'; did you mean dog"):
        tsc.explain(model, photo, class_index="dgo", class_names=names, verbose=0)
    with pytest.raises(ValueError, match="pass class_names="):
        tsc.explain(model, photo, class_index="dog", verbose=0)
    path = tmp_path / "tiny.keras"
    model.save(path)
    argv = ["explain", save_random_photo(tmp_path / "p.png"), "--model", str(path), "--quiet",
            "--class-names", str(as_text), "--class", "bee",
            "--out", str(tmp_path / "o")]  # fmt: skip
    assert cli.main(argv) == 0
    assert "bee (1):" in capsys.readouterr().out


def test_a_1000_class_model_gets_imagenet_names(tmp_path, backbone, capsys):
    photo = random_photo(BACKBONE_SIDE, BACKBONE_SIDE)
    result = tsc.explain(backbone, photo, "gradcam", preprocess=lambda v: v / 127.5 - 1)
    assert result.class_name == zoo.imagenet_class_names()[result.class_index]
    assert tsc.explain(backbone, photo, "gradcam", class_index="tabby").class_index == 281
