"""Wait for a service (the Flask monitor, the model service) to go down without holding a
worker slot.

:class:`WaitForFlaskDown` starts directly in the triggerer (``start_from_trigger``), where
:class:`FlaskDownTrigger` pings `/health` every ``interval`` seconds; after ``failures`` misses
in a row it ends the task as a success right there (``TaskSuccessEvent``), so the relaunch
task that follows starts within a scheduler loop. A healthy service costs one small async
HTTP request per interval in the triggerer and nothing else.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, StartTriggerArgs, TaskSuccessEvent, TriggerEvent

from adclick_airflow.monitoring import flask_health_url
from flask_launcher.health import ANSWER_TIMEOUT_S
from flask_launcher.services import FLASK_MONITOR, SERVICES

TRIGGER_PATH = f"{__name__}.FlaskDownTrigger"
# Four pings a second: a crash is seen within half a second; two misses in a row, so one slow
# answer is not taken for a crash (and a false alarm costs only an idempotent relaunch). The
# launcher gives a hung service as long to answer: a hung one is seen within 2.5 s.
DEFAULTS: dict[str, Any] = {
    "url": None,
    "interval": 0.25,
    "failures": 2,
    "timeout": ANSWER_TIMEOUT_S,
    "service": FLASK_MONITOR.env_prefix,
}


class FlaskDownTrigger(BaseTrigger):
    """Fires once `/health` has failed ``failures`` times in a row.

    ``service`` is a key of :data:`flask_launcher.services.SERVICES` (its settings' prefix);
    ``url`` None means its ``<PREFIX>_HEALTH_URL`` as the triggerer sees it.
    """

    def __init__(
        self,
        url: str | None = None,
        interval: float = 0.25,
        failures: int = 2,
        timeout: float = ANSWER_TIMEOUT_S,
        service: str = FLASK_MONITOR.env_prefix,
    ) -> None:
        super().__init__()
        self.url = url
        self.interval = interval
        self.failures = failures
        self.timeout = timeout
        self.service = service

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return TRIGGER_PATH, {
            "url": self.url,
            "interval": self.interval,
            "failures": self.failures,
            "timeout": self.timeout,
            "service": self.service,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import httpx

        from flask_launcher import check_health_async, launcher_from_env

        service = SERVICES[self.service]
        url = self.url or flask_health_url(service)
        launcher = launcher_from_env(os.environ, service)
        self.log.info("Watching %s every %g s", url, self.interval)
        misses = 0
        async with httpx.AsyncClient() as client:  # one for every ping: cheap pings
            while True:
                # Read each time: a relaunch elsewhere starts the service with a new key.
                key = launcher.instance_key()
                health = await check_health_async(url, self.timeout, client, key)
                misses = 0 if health["healthy"] else misses + 1
                if misses:
                    self.log.warning("%s unhealthy (%d/%d): %s", url, misses, self.failures, health)
                if misses >= self.failures:
                    down = {"url": url, "error": health["error"], "status": health["status"]}
                    yield TaskSuccessEvent(xcoms={"return_value": down})
                    return
                await asyncio.sleep(self.interval)


class WaitForFlaskDown(BaseOperator):
    """Succeeds when the service (default: the Flask monitor; ``service`` as in
    :class:`FlaskDownTrigger`) stops answering `/health`; waits in the triggerer."""

    ui_color = "#e8f4fa"
    start_from_trigger = True

    def __init__(self, *, service: str = FLASK_MONITOR.env_prefix, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trigger_kwargs = {**DEFAULTS, "service": service}
        self.start_trigger_args = StartTriggerArgs(  # its own: serialised with this task
            trigger_cls=TRIGGER_PATH,
            trigger_kwargs=self.trigger_kwargs,
            next_method="execute_complete",
            next_kwargs=None,
            timeout=None,
        )

    def execute(self, context: Any) -> None:  # only reached if the triggerer path is off
        trigger = FlaskDownTrigger(**self.trigger_kwargs)
        self.defer(trigger=trigger, method_name="execute_complete")

    def execute_complete(self, context: Any, event: Any = None) -> Any:
        return event
