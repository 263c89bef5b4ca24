"""Benchmarks of robust-score: ``python -m benchmarks [--quick]`` runs every section and writes
``docs/benchmarks.md``; ``python -m benchmarks.NAME [--quick]`` runs one section."""
