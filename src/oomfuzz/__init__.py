"""oomfuzz: the out-of-memory fault-injection harness for wasmrt."""
