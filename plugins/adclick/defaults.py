"""Training defaults: the DAG's params, the command line and the steps all start from these;
and the MLflow setting every process of ours that loads MLflow runs with.

Kept apart from :mod:`adclick.model` so reading them (a DAG file does at parse time) costs no
scikit-learn import.
"""

from __future__ import annotations

MIN_ACCURACY = 0.9  # quality gate: the hold-out accuracy a classifier needs to become current
MIN_R2 = 0.0  # quality gate of a regression: it must beat predicting the mean
MIN_ROWS = 50  # a dataset with fewer data rows is refused
TEST_SIZE = 0.3  # share of rows held out for scoring
RANDOM_STATE = 42  # seed of the split and of the classifier
# A scored batch has drifted when at least this share of its columns drifted (adclick.drift).
DRIFT_THRESHOLD = 0.5

# MLflow reports usage to its makers' servers unless told not to, from every process that
# imports it (the server, and each task and worker that records runs). Nothing here asks for
# that, and a stack's components have no business calling out: off, in the environment of
# each process before MLflow is imported (adclick.tracking, the embedded stack, compose).
MLFLOW_NO_TELEMETRY = {"MLFLOW_DISABLE_TELEMETRY": "true"}

# Where training runs are recorded (adclick.tracking), read without importing MLflow.
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"  # MLflow's own variable
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"  # MLflow's own variable
UI_URL_ENV = "ADCLICK_MLFLOW_UI_URL"
DEFAULT_EXPERIMENT = "adclick"
# Evidently (drift reports) reports usage too unless the environment says DO_NOT_TRACK.
EVIDENTLY_NO_TELEMETRY = {"DO_NOT_TRACK": "1"}
