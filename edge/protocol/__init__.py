"""Request and response models of the HTTP API (kept apart from the serving logic in routers/)."""
