"""Predictions of each model's champion, MLflow's scoring protocol, health and version.

``POST /models/<name>/predict``: JSON records or a CSV body; answers each row's prediction
(the original label, or the number of a regression), the class probabilities of a
classifier, and the version that made them. ``POST /models/<name>/invocations``: MLflow's
``dataframe_split``, ``dataframe_records`` or ``inputs``; answers ``{"predictions": [...]}``
as MLflow's scoring server does, so MLflow's clients work against it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import BadRequest, NotFound, ServiceUnavailable

from adclick.scoring import PREDICTION, Champion, predict
from adclick_contract.instance import CHALLENGE_PARAMETER, MAX_CHALLENGE_LENGTH, proof
from model_server import inputs
from model_server.champions import ServedModel, describe

bp = Blueprint("serving", __name__)


def _services() -> Any:
    return current_app.extensions["model_server"]


def _champion(name: str) -> Champion:
    served = _services().champions.get(name)
    if served is None:
        known = ", ".join(sorted(_services().champions.models)) or "none"
        raise NotFound(f"no model {name!r}; models served: {known}")
    g.model = name
    champion = served.champion  # held for the whole request, whatever a swap does meanwhile
    if champion is None:
        raise ServiceUnavailable(f"model {name!r} has no champion yet: train one that passes")
    return champion


def _frame(from_json: Callable[[Any], pd.DataFrame]) -> pd.DataFrame:
    """The request's rows: a CSV body, else its JSON through ``from_json``."""
    if inputs.is_csv(request.content_type):
        return inputs.from_csv(request.get_data())
    payload = request.get_json(silent=True)
    if payload is None:
        raise inputs.BadInput(
            f"{inputs.SOURCE}: not JSON; send application/json, or text/csv with a header line"
        )
    return from_json(payload)


def _scored(champion: Champion, frame: pd.DataFrame, labels_only: bool = False) -> pd.DataFrame:
    """The columns scoring adds (:func:`adclick.scoring.predict`); with ``labels_only``, the
    prediction alone (what MLflow's protocol answers: no probabilities to compute)."""
    features = inputs.checked(frame, champion.display, champion.features, champion.allow_missing)
    try:
        if labels_only:
            scored = pd.DataFrame({PREDICTION: champion.model.predict(features)})
        else:
            scored = predict(champion, features)
    except Exception as exc:  # the model's own refusal, whatever its type
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise inputs.BadInput(
            f"{inputs.SOURCE}: {champion.display} cannot score these rows: "
            f"{type(exc).__name__}: {first}"
        ) from exc
    _services().metrics.rows.labels(champion.name or g.model).inc(len(scored))
    return scored


@bp.post("/models/<name>/predict")
def predict_rows(name: str) -> Response:
    """Each row's prediction as the original label, the class probabilities, the version."""
    champion = _champion(name)
    scored = _scored(champion, _frame(inputs.from_records))
    answer: dict[str, Any] = {
        "model": name,
        "model_version": champion.version,
        "predictions": _plain(scored[PREDICTION]),
    }
    if champion.probability_columns:
        labels = list(champion.labels or ())
        probabilities = scored[champion.probability_columns].to_numpy().tolist()
        answer["labels"] = _plain(pd.Series(labels))
        answer["probabilities"] = [
            dict(zip(map(str, labels), row, strict=True)) for row in probabilities
        ]
    return jsonify(answer)


@bp.post("/models/<name>/invocations")
def invocations(name: str) -> Response:
    """MLflow's scoring protocol; the version served is in the ``X-Model-Version`` header."""
    champion = _champion(name)
    frame = _frame(lambda payload: inputs.from_mlflow(payload, champion.features))
    scored = _scored(champion, frame, labels_only=True)
    response = jsonify({"predictions": _plain(scored[PREDICTION])})
    response.headers["X-Model-Version"] = champion.version
    return response


@bp.get("/health")
def health() -> Response:
    """200 whenever the service serves requests, with the version each model serves; asked
    with a challenge, proves it is the instance its launcher started."""
    champions = _services().champions.models
    answer: dict[str, Any] = {
        "status": "ok",
        "models": {name: _version(served) for name, served in champions.items()},
    }
    key = current_app.config["INSTANCE_KEY"]
    challenge = request.args.get(CHALLENGE_PARAMETER, "")
    if key and 0 < len(challenge) <= MAX_CHALLENGE_LENGTH:
        answer["proof"] = proof(key, challenge)
    return jsonify(answer)


@bp.get("/version")
def version() -> Response:
    """Each model's champion: version, when promoted, its file's hash, features, labels."""
    champions = _services().champions.models
    return jsonify({"models": {name: describe(served) for name, served in champions.items()}})


@bp.get("/models/<name>")
def model(name: str) -> Response:
    served = _services().champions.get(name)
    if served is None:
        raise NotFound(f"no model {name!r}")
    return jsonify({"model": name, **describe(served)})


def _version(served: ServedModel) -> str | None:
    return served.champion.version if served.champion else None


def _plain(values: pd.Series) -> list[Any]:
    """JSON-ready values: numpy scalars to Python's, gaps to null."""
    return [None if pd.isna(value) else value for value in values.astype(object).tolist()]


def bad_input(error: inputs.BadInput) -> tuple[Response, int]:
    return jsonify(error.answer()), BadRequest.code
