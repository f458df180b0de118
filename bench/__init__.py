"""On-demand benchmarks: each runs beside a baseline measured in the same run."""
