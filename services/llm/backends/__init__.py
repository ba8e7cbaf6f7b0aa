"""Generation backends behind one interface: vLLM on GPUs, transformers on CPUs (and the tiny profile)."""
