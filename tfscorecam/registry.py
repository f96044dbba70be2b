"""Every method, in one place: its name (the slug ``explain()``, the command line,
``explain_dataset``, serving and the tests use), its class and its display name.

Plain Python, imported by ``import tfscorecam`` without TensorFlow: classes are named as
``"module:Class"`` and imported on first use (``methods.method_class``). Adding a method is
its own module, one line here, and its own reference test; ``tests/test_contract.py`` runs
every method listed here through the same checks.
"""

from __future__ import annotations

from typing import NamedTuple


class Method(NamedTuple):
    """A registered explainer."""

    path: str  # "module:Class"
    title: str  # display name

    @property
    def class_name(self) -> str:
        return self.path.split(":")[1]

    @property
    def module(self) -> str:
        return self.path.split(":")[0]


METHODS: dict[str, Method] = {
    "scorecam": Method("tfscorecam.scorecam:ScoreCAM", "Score-CAM"),
    "augmented": Method("tfscorecam.augmented:AugmentedScoreCAM", "Augmented Score-CAM"),
    "gradcam": Method("tfscorecam.gradcam:GradCAM", "Grad-CAM"),
    "gradcam++": Method("tfscorecam.gradcam:GradCAMPlusPlus", "Grad-CAM++"),
    "iscam": Method("tfscorecam.iscam:ISCAM", "IS-CAM"),
    "sscam": Method("tfscorecam.sscam:SSCAM", "SS-CAM"),
    "layercam": Method("tfscorecam.layercam:LayerCAM", "LayerCAM"),
}


def method_list() -> str:
    """The method names, quoted, for messages and docstrings."""
    return ", ".join(f'"{name}"' for name in METHODS)
