"""The web edge: signed no-login pages, the REST API under `/api/v1`, health and metrics
(`app.py` builds the ASGI app, `server.py` serves it)."""
