"""Benchmarks for the daemon cluster (see bench/README.md)."""
