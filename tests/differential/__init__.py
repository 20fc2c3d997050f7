"""Differential and robustness campaigns: wasmrt against Wasmtime (the oracle)."""
