"""Research studies behind the defaults (Augmented Score-CAM's views, fusion and resolution)."""
