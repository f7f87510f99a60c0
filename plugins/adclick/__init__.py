"""Ad-click model: validate the CSV, train a scaled logistic regression, keep versioned models.

Plain Python with no Airflow import, so the same code runs in a DAG task, the
``python -m adclick`` command line and the tests. Submodules are imported on demand to keep
``import adclick`` cheap (the generator does not need scikit-learn).
"""
