"""Errors a user can act on. Callers catch :class:`AdclickError` to show a message, not a trace."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_LINES_SHOWN = 5


class AdclickError(Exception):
    """Base class: something about the input or the environment, not a bug in this package."""


class DataValidationError(AdclickError, ValueError):
    """The dataset cannot be trained on. The message names file, column, CSV lines and problem.

    ``lines`` are the first few 1-based line numbers as an editor shows them (the header is
    line 1), or with ``unit="row"`` data rows by position (after a module's preprocessing
    there are no CSV lines any more); ``count`` is how many rows have the problem in total.
    """

    def __init__(
        self,
        path: object,
        problem: str,
        *,
        column: str | None = None,
        lines: Sequence[int] = (),
        count: int | None = None,
        unit: str = "line",
    ) -> None:
        self.path = str(path)
        self.unit = unit
        self.problem = problem
        self.column = column
        self.lines = list(lines)[:MAX_LINES_SHOWN]
        self.count = len(lines) if count is None else count
        super().__init__(self._format())

    def shown_as(self, path: str) -> DataValidationError:
        """The same error naming the file as ``path`` (e.g. relative to the data root)."""
        self.path = path
        self.args = (self._format(),)
        return self

    def _format(self) -> str:
        where = []
        if self.column is not None:
            where.append(f"column '{self.column}'")
        if self.lines:
            where.append(_describe_lines(self.lines, self.count, self.unit))
        prefix = f"{self.path}: " + (", ".join(where) + ": " if where else "")
        return prefix + self.problem


def _describe_lines(lines: Sequence[int], count: int, unit: str = "line") -> str:
    if count <= 1:
        return f"{unit} {lines[0]}"
    shown = ", ".join(str(n) for n in lines)
    more = count - len(lines)
    return f"{unit}s {shown}{f' and {more} more' if more else ''} ({count} rows)"


class FitError(AdclickError):
    """A model's estimator refused to fit: the message names module, candidate and reason."""


class QualityGateError(AdclickError):
    """A trained model scored below the gate. It is kept as a rejected version, never current.

    ``result`` is the step's summary (version, metrics, promoted=False) so callers can still
    report what was trained.
    """

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        self.result = result
        super().__init__(message)


class RegistryError(AdclickError):
    """The model directory cannot be written (read-only, disk full, ...) or read back.

    Raised after any partial write was cleaned up, so the current model is as it was.
    """

    def __init__(self, directory: object, action: str, cause: BaseException) -> None:
        self.directory = str(directory)
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else cause
        super().__init__(f"model directory {self.directory}: cannot {action}: {reason}")


class ConfigError(AdclickError):
    """A setting of the deployment (an environment variable) has a value that cannot be used."""


class ModelNotFoundError(AdclickError):
    """There is no model to use: the registry names no current version (nothing passed its
    gate yet)."""


class ArtifactError(AdclickError):
    """A run's working directory holds something that must not be loaded (e.g. a model file
    that resolves outside the artifacts root)."""


class TrackingError(AdclickError):
    """The MLflow tracking server (or store) is down, refused a call, or cannot be used.

    Raised before anything in the model directory changed, so the current model is as it was.
    """

    MAX_REASON = 300

    def __init__(self, uri: str, action: str, cause: BaseException) -> None:
        self.uri = uri
        lines = str(cause).strip().splitlines() or [type(cause).__name__]
        reason = lines[0] if len(lines[0]) <= self.MAX_REASON else lines[0][: self.MAX_REASON] + "…"
        super().__init__(f"MLflow at {uri}: cannot {action}: {reason}")
