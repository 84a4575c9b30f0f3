"""Helpers for tests, simulations and benchmarks (deterministic chains with known keys); never used by a node."""
