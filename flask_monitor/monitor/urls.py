"""Links between the pages of one model: the default DAG's routes (/api, /history, /runs/...)
or a model's own under /models/<name>, whichever the request is on."""

from __future__ import annotations

from typing import Any

from flask import request, url_for

# page -> (the default DAG's endpoint, a model's endpoint)
ENDPOINTS = {
    "latest": ("monitor.api", "models.latest"),
    "history": ("monitor.history", "models.history"),
    "run": ("monitor.run", "models.run"),
}


def scoped_url(page: str, **values: Any) -> str:
    """``page`` (latest, history, run) of the model the request is about."""
    name = (request.view_args or {}).get("name")
    default, per_model = ENDPOINTS[page]
    if name is None:
        return url_for(default, **values)
    return url_for(per_model, name=name, **values)
