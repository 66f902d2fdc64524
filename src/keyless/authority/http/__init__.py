"""The authority's HTTP surface: protocol endpoints (Starlette) and the admin API (FastAPI)."""
