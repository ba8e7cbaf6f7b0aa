"""Chat completions with vision: POST /v1/chat/completions, whole or streamed."""
