"""The champion of each model, kept loaded and swapped when a new one is promoted.

One poller thread (a greenlet under gunicorn's gevent worker) reads each registry's
``current.json`` every ``interval`` seconds. When its bytes change, the new champion is
loaded through :func:`adclick.scoring.load_champion` (its file's SHA-256 checked against
``current`` before unpickling) and only then put in place: a request holds the champion it
started with, so none fails during a swap. A champion that cannot be loaded (hash mismatch,
unreadable file, an unpickling error) leaves the old one serving and is reported once to
``on_rejected``; a later promotion (a new ``current.json``) is tried afresh.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adclick import contract, storage
from adclick.registry import ModelRegistry
from adclick.scoring import Champion, load_champion

log = logging.getLogger(__name__)


@dataclass
class ServedModel:
    """A model of the contract, its registry, and the champion being served (None before the
    first promotion)."""

    spec: contract.ModelSpec
    registry: ModelRegistry
    champion: Champion | None = None
    promoted_at: str | None = None
    sha256: str | None = None
    seen: bytes | None = None  # current.json as last acted upon
    unreadable: str | None = None  # why current.json could not be read last time (logged once)


Rejected = Callable[[ServedModel, bytes, Exception], None]
Swapped = Callable[[ServedModel, Champion | None], None]


class Champions:
    """Every model of ``models_dir``, its champion from ``<model_root>`` (see
    :func:`adclick.contract.registry_dir`)."""

    def __init__(
        self,
        models_dir: Path | str,
        model_root: storage.StoragePath | str,
        *,
        interval: float,
        on_rejected: Rejected,
        on_swapped: Swapped,
    ) -> None:
        root = storage.location(model_root)
        self.models: dict[str, ServedModel] = {}
        for path in contract.module_files(models_dir):
            # Imported first: a model may pickle references to its module's functions.
            spec = contract.load_named(path.stem, models_dir)
            registry = ModelRegistry(contract.registry_dir(root, spec.name))
            self.models[spec.name] = ServedModel(spec, registry)
        self.interval = interval
        self.on_rejected = on_rejected
        self.on_swapped = on_swapped
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def get(self, name: str) -> ServedModel | None:
        return self.models.get(name)

    def refresh(self) -> None:
        """Look at every registry once; load and swap in what was promoted since."""
        for served in self.models.values():
            try:
                pointer = served.registry.current_file.read_bytes()
            except FileNotFoundError:
                continue  # nothing promoted yet
            except Exception as exc:  # a store that does not answer: try again next round
                if str(exc) != served.unreadable:
                    log.warning("model %s: cannot read current.json: %s", served.spec.name, exc)
                served.unreadable = str(exc)
                continue
            served.unreadable = None
            if pointer != served.seen:
                self._load(served, pointer)

    def _load(self, served: ServedModel, pointer: bytes) -> None:
        served.seen = pointer
        try:
            champion = load_champion(served.registry.model_dir)
            current = served.registry.current() or {}
        except Exception as exc:  # whatever the file or the unpickling raised
            log.error(
                "model %s: new champion not loaded, still serving %s: %s",
                served.spec.name,
                _version(served.champion),
                exc,
            )
            self.on_rejected(served, pointer, exc)
            return
        old = served.champion
        served.champion = champion  # one assignment: a request sees the old or the new one
        same = current.get("version") == champion.version  # else promoted again meanwhile
        served.promoted_at = current.get("promoted_at") if same else None
        served.sha256 = current.get("sha256") if same else None
        log.info(
            "model %s: serving version %s (was %s)",
            served.spec.name,
            champion.version,
            _version(old),
        )
        self.on_swapped(served, old)

    def start(self) -> None:
        """Load what is current now, then keep looking in the background."""
        self.refresh()
        self._thread = threading.Thread(target=self._poll, name="champion-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # never let the poller die: the next round tries again
                log.exception("champion poll failed")


def _version(champion: Champion | None) -> str:
    return champion.version if champion is not None else "none"


def describe(served: ServedModel) -> dict[str, Any]:
    """What /version says of one model."""
    champion = served.champion
    return {
        "version": champion.version if champion else None,
        "promoted_at": served.promoted_at,
        "sha256": served.sha256,
        "task": served.spec.task,
        "features": list(served.spec.features),
        "labels": list(champion.labels) if champion and champion.labels is not None else None,
    }
