"""The ways a user runs a method: ``explain()`` in a notebook, the command line, a SavedModel
for TensorFlow Serving, and whole datasets on Ray."""
