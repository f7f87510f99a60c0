"""The model contract: one Python module per model, in the ``models/`` folder beside the DAGs.

A team's module names what its existing training script already has (see
``docs/bring-your-own-model.md``)::

    TARGET = "species"                      # the column to predict
    FEATURES = ["sepal length (cm)", ...]   # the raw input columns, of any dtype
    TASK = "multiclass"                     # "binary", "multiclass" or "regression"
    LABELS = ["setosa", "versicolor", ...]  # classification: the classes as in the CSV
    HYPERPARAMETERS = {"n_estimators": 100} # build_model's defaults

    def build_model(random_state, **hyperparameters): ...  # an unfitted estimator

and optionally ``data_preprocessing(df)``, ``separate_data_outputs(df, test_size,
random_state)``, ``evaluate(model, X, y)``, ``METRIC``, ``GATE``, ``LABEL_NAMES``, ``DAG_ID``,
``DATA_PATH`` (the default CSV, relative to the data root; default ``<name>.csv``) and
``ALLOW_MISSING`` (True when the estimator takes missing feature values, e.g. behind an
imputer; by default rows with gaps are refused before training, named).

:func:`load_module` imports a module file and checks it; every problem is a
:class:`ContractError` naming the file and what is wrong (``dags/models/churn.py: TARGET is
not defined``). No scikit-learn import here: the DAG files call this at parse time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from adclick import defaults
from adclick.errors import AdclickError

MODELS_DIR = "models"  # beside the DAG files: dags/models/<name>.py
DEFAULT_MODEL = "adclick"
TASKS = ("binary", "multiclass", "regression")
METRICS = {
    "binary": ("accuracy", "precision", "recall", "f1", "roc_auc"),
    "multiclass": ("accuracy", "f1_macro", "precision_macro", "recall_macro"),
    "regression": ("r2", "rmse", "mae"),
}
DEFAULT_METRIC = {"binary": "accuracy", "multiclass": "accuracy", "regression": "r2"}
# Error metrics: the lower the better, so a gate on them is a "max".
LOWER_IS_BETTER = frozenset({"rmse", "mae"})
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_DAG_ID = re.compile(r"[A-Za-z0-9_.-]{1,200}")
# Modules are imported under this prefix, one flat name each: never shadowing a package.
_MODULE_PREFIX = "adclick_model_"


class ContractError(AdclickError):
    """A model module that breaks the contract; the message starts with the module's file."""


@dataclass(frozen=True)
class ModelSpec:
    """A checked model module: its names, its functions, and the file's identity."""

    name: str
    path: Path
    display: str
    sha256: str
    target: str
    features: tuple[str, ...]
    task: str
    labels: tuple[Any, ...] | None
    label_names: Mapping[Any, str]
    hyperparameters: Mapping[str, Any]
    metric: str
    dag_id: str
    data_path: str
    build_model: Callable[..., Any]
    data_preprocessing: Callable[[Any], Any] | None = None
    separate_data_outputs: Callable[..., Any] | None = None
    evaluate: Callable[..., Mapping[str, float]] | None = None
    gate: Mapping[str, Any] = field(default_factory=dict)  # the default gate
    allow_missing: bool = False  # the estimator takes missing feature values (an imputer)
    module: ModuleType | None = field(default=None, repr=False, compare=False)

    @property
    def is_classifier(self) -> bool:
        return self.task != "regression"

    @property
    def scoring_dag_id(self) -> str:
        """``<name>_scoring``, or the training DAG id's stem when it ends in ``_training``
        (``ad_click_training`` scores in ``ad_click_scoring``)."""
        if self.dag_id.endswith("_training"):
            return self.dag_id.removesuffix("_training") + "_scoring"
        return f"{self.name}_scoring"

    @property
    def required(self) -> tuple[str, ...]:
        """The columns the model reads: its features, then its target."""
        return (*self.features, self.target)

    @property
    def class_names(self) -> list[str] | None:
        """Display text per label, in ``labels`` order (``LABEL_NAMES``, else the label)."""
        if self.labels is None:
            return None
        return [str(self.label_names.get(label, label)) for label in self.labels]

    def describe(self) -> dict[str, Any]:
        """What a result, ``metadata.json`` and an MLflow run say about the model."""
        return {
            "model": self.name,
            "task": self.task,
            "labels": list(self.labels) if self.labels is not None else None,
            "class_names": self.class_names,
            "features": list(self.features),
            "target": self.target,
            "model_module": self.display,
            "model_sha256": self.sha256,
            "allow_missing": self.allow_missing,
        }


def models_dir_of(dags_folder: Path | str) -> Path:
    """The folder of model modules for a DAGs folder."""
    return Path(dags_folder) / MODELS_DIR


def module_files(models_dir: Path | str) -> list[Path]:
    """The model modules of ``models_dir``, by name; files starting with ``_`` are helpers."""
    folder = Path(models_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))


def load_named(name: str, models_dir: Path | str) -> ModelSpec:
    """The model ``name`` of ``models_dir``. Only a plain module name is accepted, never a
    path: what a trigger conf or a setting says cannot reach outside the folder."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ContractError(
            f"model {name!r}: a model name is a module name in {MODELS_DIR}/ "
            "(lower-case letters, digits, '_')"
        )
    path = Path(models_dir) / f"{name}.py"
    if not path.is_file():
        known = ", ".join(p.stem for p in module_files(models_dir)) or "none"
        raise ContractError(f"model {name!r}: no {path}; models there: {known}")
    return load_module(path, display=f"{Path(models_dir).parent.name}/{MODELS_DIR}/{path.name}")


_LOADED: dict[tuple[str, str], ModelSpec] = {}


def load_module(path: Path | str, *, display: str | None = None) -> ModelSpec:
    """Import the module file at ``path`` and check it against the contract.

    A file is imported once per process for the same bytes (the DAG file and a task both
    ask). Raises :class:`ContractError` naming ``display`` (default: ``path``).
    """
    path = Path(path)
    shown = display or str(path)
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise ContractError(f"{shown}: cannot read the module: {exc.strerror or exc}") from None
    name = path.stem
    if not _NAME.fullmatch(name):
        raise ContractError(
            f"{shown}: the file name must be a module name (lower-case letters, digits, '_')"
        )
    sha256 = hashlib.sha256(source).hexdigest()
    key = (str(path.resolve()), sha256)
    if key in _LOADED:
        return _LOADED[key]
    module = _import(path, name, shown)
    spec = _check(module, name, path, shown, sha256)
    _LOADED[key] = spec
    return spec


def _import(path: Path, name: str, shown: str) -> ModuleType:
    module_name = _MODULE_PREFIX + name
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ContractError(f"{shown}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(loader_spec)
    # Registered before it runs, as an import would: a pickled function of the module (a
    # FunctionTransformer's) is found again by this name when the model is loaded.
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:  # the team's code: any error is a broken module
        sys.modules.pop(module_name, None)
        where = ""
        if isinstance(exc, SyntaxError) and exc.lineno:
            where = f" (line {exc.lineno})"
        raise ContractError(
            f"{shown}: importing it fails{where}: {type(exc).__name__}: {exc}"
        ) from None
    return module


def _check(module: ModuleType, name: str, path: Path, shown: str, sha256: str) -> ModelSpec:
    def fail(problem: str) -> ContractError:
        return ContractError(f"{shown}: {problem}")

    def required(attribute: str) -> Any:
        if not hasattr(module, attribute):
            raise fail(f"{attribute} is not defined")
        return getattr(module, attribute)

    target = required("TARGET")
    if not isinstance(target, str) or not target:
        raise fail(f"TARGET must be a column name (a non-empty string), got {target!r}")
    features = required("FEATURES")
    if (
        isinstance(features, str)
        or not isinstance(features, Sequence)
        or not features
        or not all(isinstance(f, str) and f for f in features)
    ):
        raise fail(f"FEATURES must be a non-empty list of column names, got {features!r}")
    repeated = sorted({f for f in features if list(features).count(f) > 1})
    if repeated:
        raise fail(f"FEATURES names {repeated[0]!r} more than once")
    if target in features:
        raise fail(f"TARGET {target!r} is also in FEATURES")
    task = required("TASK")
    if task not in TASKS:
        raise fail(f"TASK must be one of {', '.join(map(repr, TASKS))}, got {task!r}")
    labels = _labels(module, task, fail)
    label_names = getattr(module, "LABEL_NAMES", None) or {}
    if not isinstance(label_names, Mapping) or not all(
        labels is not None and key in labels and isinstance(text, str)
        for key, text in label_names.items()
    ):
        raise fail(f"LABEL_NAMES must map labels of LABELS to display text, got {label_names!r}")
    build_model = required("build_model")
    if not callable(build_model):
        raise fail("build_model must be a function (random_state, **hyperparameters)")
    hyperparameters = required("HYPERPARAMETERS")
    if not isinstance(hyperparameters, Mapping) or not all(
        isinstance(k, str) for k in hyperparameters
    ):
        raise fail(f"HYPERPARAMETERS must be a dict of keyword arguments, got {hyperparameters!r}")
    optional = {}
    for function in ("data_preprocessing", "separate_data_outputs", "evaluate"):
        value = getattr(module, function, None)
        if value is not None and not callable(value):
            raise fail(f"{function} must be a function, got {value!r}")
        optional[function] = value
    metric = getattr(module, "METRIC", None) or DEFAULT_METRIC[task]
    if metric not in METRICS[task] and optional["evaluate"] is None:
        raise fail(f"METRIC {metric!r} is not a {task} metric ({', '.join(METRICS[task])})")
    gate = _default_gate(module, task, metric, optional["evaluate"] is not None, fail)
    dag_id = getattr(module, "DAG_ID", None) or f"{name}_training"
    if not isinstance(dag_id, str) or not _DAG_ID.fullmatch(dag_id):
        raise fail(f"DAG_ID must be letters, digits, '_', '.' or '-', got {dag_id!r}")
    data_path = getattr(module, "DATA_PATH", None) or f"{name}.csv"
    if not isinstance(data_path, str):
        raise fail(f"DATA_PATH must be a path relative to the data root, got {data_path!r}")
    allow_missing = getattr(module, "ALLOW_MISSING", False)
    if not isinstance(allow_missing, bool):
        raise fail(f"ALLOW_MISSING must be True or False, got {allow_missing!r}")
    return ModelSpec(
        name=name,
        path=path,
        display=shown,
        sha256=sha256,
        target=target,
        features=tuple(features),
        task=task,
        labels=labels,
        label_names=dict(label_names),
        hyperparameters=dict(hyperparameters),
        metric=metric,
        dag_id=dag_id,
        data_path=data_path,
        build_model=build_model,
        gate=gate,
        allow_missing=allow_missing,
        module=module,
        **optional,
    )


def _default_gate(
    module: ModuleType,
    task: str,
    metric: str,
    has_evaluate: bool,
    fail: Callable[[str], ContractError],
) -> dict[str, Any]:
    """The module's ``GATE``, else ``METRIC`` >= 0.9 for a classifier, r2 >= 0.0 (better
    than the mean) for a regression; an error metric has no natural bound: it needs a GATE."""
    given = getattr(module, "GATE", None)
    if given is not None:
        try:
            return _checked_gate(given, task, has_evaluate)
        except ContractError as exc:
            raise fail(f"GATE: {exc}") from None
    if metric in LOWER_IS_BETTER or (metric not in METRICS[task] and task == "regression"):
        raise fail(f"METRIC {metric!r} needs a GATE, e.g. {{'metric': {metric!r}, 'max': 10.0}}")
    bound = defaults.MIN_R2 if task == "regression" else defaults.MIN_ACCURACY
    return {"metric": metric, "min": bound}


def registry_dir(model_root: Any, name: str) -> Any:
    """A model's registry folder: the model root for the default model (its paths as they
    always were), ``<root>/<name>`` for every other."""
    return model_root if name == DEFAULT_MODEL else model_root / name


def _labels(
    module: ModuleType, task: str, fail: Callable[[str], ContractError]
) -> tuple[Any, ...] | None:
    labels = getattr(module, "LABELS", None)
    if task == "regression":
        if labels is not None:
            raise fail("LABELS is for classification; TASK is 'regression'")
        return None
    if labels is None:
        raise fail(f"LABELS is not defined (TASK {task!r} needs the class values, in order)")
    if (
        isinstance(labels, str | bytes)
        or not isinstance(labels, Sequence)
        or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in labels)
    ):
        raise fail(f"LABELS must be a list of class values (strings or integers), got {labels!r}")
    if len(set(labels)) != len(labels):
        raise fail(f"LABELS names a class more than once: {list(labels)!r}")
    if task == "binary" and len(labels) != 2:
        raise fail(f"TASK 'binary' needs exactly 2 LABELS, got {len(labels)}")
    if task == "multiclass" and len(labels) < 3:
        raise fail(f"TASK 'multiclass' needs at least 3 LABELS (2 is 'binary'), got {len(labels)}")
    return tuple(labels)


def check_gate(gate: object, spec: ModelSpec) -> dict[str, Any]:
    """A gate ``{"metric": NAME, "min": X}`` or ``{"metric": NAME, "max": X}``, checked
    for ``spec``'s task."""
    try:
        return _checked_gate(gate, spec.task, spec.evaluate is not None)
    except ContractError as exc:
        raise ContractError(f"model {spec.name}: {exc}") from None


def _checked_gate(gate: object, task: str, has_evaluate: bool) -> dict[str, Any]:
    if not isinstance(gate, Mapping) or "metric" not in gate:
        raise ContractError(f"gate must be {{'metric': NAME, 'min' or 'max': X}}, got {gate!r}")
    bounds = [key for key in ("min", "max") if key in gate]
    extra = sorted(set(gate) - {"metric", "min", "max"})
    if len(bounds) != 1 or extra:
        raise ContractError(f"gate must have exactly one of 'min' or 'max', got {dict(gate)!r}")
    metric, bound = gate["metric"], bounds[0]
    value = gate[bound]
    if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
        raise ContractError(f"gate {bound} must be a number, got {value!r}")
    if not isinstance(metric, str) or (metric not in METRICS[task] and not has_evaluate):
        raise ContractError(
            f"gate metric {metric!r} is not a {task} metric ({', '.join(METRICS[task])})"
        )
    return {"metric": metric, bound: float(value)}


def parse_gate(text: str) -> dict[str, Any]:
    """``METRIC>=X`` or ``METRIC<=X`` (the command line's form) as a gate."""
    match = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=)\s*([-+0-9.eE]+)\s*", text)
    if not match:
        raise ContractError(f"gate {text!r}: write METRIC>=X or METRIC<=X, e.g. accuracy>=0.9")
    metric, operator, number = match.groups()
    try:
        value = float(number)
    except ValueError:
        raise ContractError(f"gate {text!r}: {number!r} is not a number") from None
    return {"metric": metric, "min" if operator == ">=" else "max": value}


def passes(gate: Mapping[str, Any], metrics: Mapping[str, Any]) -> bool:
    """The gate's verdict on hold-out ``metrics``; a missing or undefined metric fails."""
    value = metrics.get(gate["metric"])
    if value is None:
        return False
    return value >= gate["min"] if "min" in gate else value <= gate["max"]


def ranking_key(gate: Mapping[str, Any], metrics: Mapping[str, Any]) -> float:
    """Sort key: smaller is better on the gate's metric, in its direction; undefined last."""
    value = metrics.get(gate["metric"])
    if value is None:
        return float("inf")
    return -float(value) if "min" in gate else float(value)


def describe_gate(gate: Mapping[str, Any]) -> str:
    """``accuracy >= 0.9``: how mails, errors and logs state a gate."""
    if "min" in gate:
        return f"{gate['metric']} >= {gate['min']:g}"
    return f"{gate['metric']} <= {gate['max']:g}"


def check_not_looser(
    gate: Mapping[str, Any], floor: Mapping[str, Any], min_improvement: float
) -> None:
    """Refuse a gate looser than ``floor`` (another metric, a lower min, a higher max) or a
    negative ``min_improvement``, naming the param."""
    bound = "min" if "min" in floor else "max"
    if gate.get("metric") != floor["metric"] or bound not in gate:
        raise ContractError(
            f"gate {dict(gate)!r} is not on the default gate's metric and direction "
            f"({describe_gate(floor)}); a conf may only tighten it"
        )
    looser = gate[bound] < floor[bound] if bound == "min" else gate[bound] > floor[bound]
    if looser:
        raise ContractError(
            f"gate {describe_gate(gate)} is looser than the default "
            f"{describe_gate(floor)}; a conf may only tighten it"
        )
    if min_improvement < 0:
        raise ContractError(
            f"min_improvement {min_improvement:g} is negative: a worse model would replace "
            "the champion"
        )


def no_looser_schema(floor: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON schema keywords of a gate object no looser than ``floor``: the same metric
    and bound, the bound at least as strict (what :func:`check_not_looser` checks)."""
    bound = "min" if "min" in floor else "max"
    return {
        "required": ["metric", bound],
        "properties": {
            "metric": {"const": floor["metric"]},
            bound: {"minimum" if bound == "min" else "maximum": floor[bound]},
        },
    }
