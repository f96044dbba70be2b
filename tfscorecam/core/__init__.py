"""What every method shares: the explainer base class, the model tap, the class head and
targets, maps, image checks, class names and named preprocessings. Imports nothing else from
tfscorecam (see ARCHITECTURE.md)."""
