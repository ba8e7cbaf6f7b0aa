"""The HTTP endpoint groups: one folder each, with the same files (vLLM's entrypoints/openai layout):
router.py (the routes, thin), protocol.py (request/response shapes only), translate.py (HTTP body ↔
proto, and the checks made before any credits are reserved). Metered endpoints call edge.serving."""
