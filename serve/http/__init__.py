"""The HTTP edge: the FastAPI app (API, OpenAI-compatible API, web page, dashboard)
over a :class:`~serve.http.platform.Platform` (in-process or the running tree)."""
