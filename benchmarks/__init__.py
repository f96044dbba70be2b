"""Benchmarks and evaluations: `python -m benchmarks.<group>.<script>` from the repository root."""
