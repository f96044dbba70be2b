"""Augmented Score-CAM: its views (``augment``), its fusion (``superres``) and the explainer
(``asc``)."""
