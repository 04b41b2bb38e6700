"""Side-by-side speed and memory benchmarks (scripts, not tests); see benchmarks/RESULTS.md."""
