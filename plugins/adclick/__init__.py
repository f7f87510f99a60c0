"""Train any scikit-learn model a team has, described by one module of ``dags/models/`` (see
:mod:`adclick.contract`): validate its CSV, fit and score a grid of candidates, keep versioned
models and record them in MLflow.

Plain Python with no Airflow import, so the same code runs in a DAG task, the
``python -m adclick`` command line and the tests. Submodules are imported on demand to keep
``import adclick`` cheap (checking a module needs no scikit-learn).
"""
