"""Speed: ours against the bare forward passes, the peers and the served SavedModel."""
