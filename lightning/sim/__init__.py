"""Whole-node deterministic simulation: many real nodes in one process over the simulated network, with faults,
clients and invariants. See docs/simulation.md."""
