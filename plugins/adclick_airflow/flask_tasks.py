"""The tasks that keep the Flask monitor and the model service up, shared by the monitor DAG
and the watchdog DAGs.

Each finishes in seconds: nothing here holds a worker slot while a service runs. They reach
the services on the main host's own network (its socket proxy, for a relaunch), so they run
on the main host's queue wherever they are used. The work is in plain functions taking the
service (:mod:`flask_launcher.services`); the tasks bind them to one service each.
"""

from __future__ import annotations

import os
import time

from airflow.sdk import task

from adclick_airflow import notify, settings
from adclick_airflow.monitoring import flask_health_url
from adclick_airflow.relaunches import RelaunchHistory
from adclick_airflow.settings import MAIN_HOST_QUEUE
from flask_launcher.services import FLASK_MONITOR, MODEL_SERVER, Service

HEALTH_TIMEOUT_S = 2.0
RELAUNCH_TIMEOUT_S = 30.0


@task.branch(queue=MAIN_HOST_QUEUE)
def check_flask_health() -> list[str]:
    """Ping the Flask service's `/health`; go on to `relaunch_flask` only if it is down (or
    another program answers in its place)."""
    from flask_launcher import check_health, launcher_from_env

    key = launcher_from_env(os.environ).instance_key()
    health = check_health(flask_health_url(), timeout=HEALTH_TIMEOUT_S, key=key)
    print(f"Flask monitor health: {health}")
    if not health["healthy"]:
        return ["relaunch_flask"]
    notify.flask_back()
    return []


# A failed relaunch (after its retries) or verification mails once per outage.
@task(queue=MAIN_HOST_QUEUE, on_failure_callback=notify.flask_down)
def relaunch_flask() -> str:
    """(Re)start the Flask service through the configured launcher (`FLASK_LAUNCHER`:
    `process` or `docker`); idempotent, never two instances. A service that runs but does
    not answer is replaced. Relaunches back off (the wait doubles with each one in the
    window), and more of them than the flapping threshold alert once per episode."""
    return relaunch(FLASK_MONITOR)


@task(queue=MAIN_HOST_QUEUE, on_failure_callback=notify.flask_down)
def verify_flask_health() -> dict:
    """Fail loudly unless `/health` answers 200 within the relaunch timeout; once it does
    after a reported outage, mail that the service is back."""
    return verify(FLASK_MONITOR)


@task(queue=MAIN_HOST_QUEUE, on_failure_callback=notify.model_server_down)
def relaunch_model_server() -> str:
    """(Re)start the model service through its launcher (`MODEL_SERVER_LAUNCHER`), as
    `relaunch_flask` does the Flask monitor."""
    return relaunch(MODEL_SERVER)


@task(queue=MAIN_HOST_QUEUE, on_failure_callback=notify.model_server_down)
def verify_model_server_health() -> dict:
    """Fail loudly unless the model service's `/health` answers within the relaunch timeout."""
    return verify(MODEL_SERVER)


def relaunch(service: Service) -> str:
    """Back off after recent relaunches, make the launcher ensure ``service`` runs, count the
    relaunch, and alert once when it opens a flapping episode."""
    from flask_launcher import ALREADY_RUNNING, launcher_from_env

    history = RelaunchHistory(settings.flask_relaunch_file(service), settings.relaunch_policy())
    if wait := history.backoff():
        print(f"Relaunched recently: waiting {wait:.1f} s before relaunching again")
        time.sleep(wait)
    launcher = launcher_from_env(os.environ, service)
    outcome = launcher.ensure_running()
    print(f"{launcher.describe()}: {outcome}")
    if outcome != ALREADY_RUNNING:
        recorded = history.record()
        if recorded.opened_episode and recorded.flapping_since is not None:
            policy = history.policy
            notify.flask_flapping(
                recorded.in_window, policy.window_s, recorded.flapping_since, service
            )
    return outcome


def verify(service: Service) -> dict:
    """``service``'s health once it answers; RuntimeError when it does not within
    RELAUNCH_TIMEOUT_S. Closes a reported outage (one mail)."""
    from flask_launcher import launcher_from_env, wait_healthy

    url = flask_health_url(service)
    key = launcher_from_env(os.environ, service).instance_key()
    health = wait_healthy(url, timeout=RELAUNCH_TIMEOUT_S, key=key)
    if not health["healthy"]:
        raise RuntimeError(
            f"{service.title} at {url} still unhealthy {RELAUNCH_TIMEOUT_S:.0f} s after "
            f"relaunch: {health.get('error') or health.get('status')}"
        )
    notify.flask_back(service)
    return health
