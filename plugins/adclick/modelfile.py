"""Model files: skops where the model allows it, a joblib pickle where it does not.

A skops file is loaded without running code: only the types it names are built, and only
types this module trusts: classes of scikit-learn, NumPy and SciPy (:func:`trusted`), listed
from the file itself. A model holding anything else (a team's own transformer class, a
function) is saved as a pickle, which runs code when loaded; :func:`load` unpickles only
bytes whose SHA-256 matches the one recorded when they were written (:mod:`adclick.integrity`),
and checks that hash for skops files too.
"""

from __future__ import annotations

import importlib
import io
from typing import Any

from adclick import integrity
from adclick.errors import ArtifactError

SKOPS, PICKLE = "skops", "pickle"
# A skops file is a zip archive; a joblib pickle starts with the pickle protocol's opcode.
_ZIP_MAGIC = b"PK\x03\x04"
# Libraries whose classes a model file may name: building one of them runs no code of the
# file's choosing. Functions (a FunctionTransformer's), anything else: a pickle.
TRUSTED_LIBRARIES = ("sklearn", "numpy", "scipy")


class UntrustedModelError(ArtifactError):
    """A skops model file names a type this stack does not trust: it is not loaded."""


def trusted(type_name: str) -> bool:
    """Whether ``type_name`` (``module.Class``, as skops lists it) is a class of a trusted
    library. Only that library's own modules are imported to tell."""
    module_name, _, attribute = type_name.rpartition(".")
    if module_name.split(".")[0] not in TRUSTED_LIBRARIES:
        return False
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError):
        return False
    return isinstance(found, type)


def skops_types(data: bytes) -> list[str]:
    """The types a skops file names beyond those skops trusts by default."""
    import skops.io

    return sorted(skops.io.get_untrusted_types(data=data))


def dumps(model: Any) -> tuple[bytes, str]:
    """``model``'s file and its format: skops when every type in it is trusted, else a
    joblib pickle."""
    import skops.io

    try:
        data = skops.io.dumps(model)
    except Exception:  # any type skops cannot persist: a pickle then
        data = None
    if data is not None and all(trusted(name) for name in skops_types(data)):
        return data, SKOPS
    import joblib

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue(), PICKLE


def skops_trusted_types(model: Any) -> list[str] | None:
    """The types to trust when loading ``model`` saved with skops (MLflow's
    ``skops_trusted_types``), or None when it is saved as a pickle."""
    data, file_format = dumps(model)
    return skops_types(data) if file_format == SKOPS else None


def format_of(data: bytes) -> str:
    return SKOPS if data.startswith(_ZIP_MAGIC) else PICKLE


def load(data: bytes, expected_sha256: str | None, path: object, recorded: str) -> Any:
    """The model in ``data`` (read from ``path``), once its SHA-256 is ``expected_sha256``
    (``recorded`` says where that hash was kept); a skops file naming an untrusted type is
    refused (:class:`UntrustedModelError`)."""
    integrity.check(data, expected_sha256, path, recorded)
    if format_of(data) == SKOPS:
        import skops.io

        names = skops_types(data)
        refused = [name for name in names if not trusted(name)]
        if refused:
            raise UntrustedModelError(
                f"{path}: the model file names types this stack does not trust "
                f"({', '.join(refused)}); not loading it"
            )
        return skops.io.loads(data, trusted=names)
    import joblib

    return joblib.load(io.BytesIO(data))
