"""Airflow-side glue for the ad-click DAGs: settings, conf checks and e-mail notifications.

The ML itself lives in :mod:`adclick` (no Airflow import); this package only adapts it to
Airflow's task context, so the DAG files stay a readable wiring diagram.
"""
