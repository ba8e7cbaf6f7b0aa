"""The LLM service: OpenAI chat completions with vision and streaming (Qwen3.5-4B; vLLM on GPUs,
transformers elsewhere and for the tiny profile)."""
