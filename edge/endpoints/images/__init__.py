"""Image generation and editing: POST /v1/images/generations, /generations/batch and /edits."""
