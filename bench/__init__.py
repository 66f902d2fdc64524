"""Benchmarks. Every figure is printed next to the raw `cryptography` ceiling measured in the same run."""
