"""Media files: GET /v1/media/{id} (public) and the caller's listings."""
