"""Command line: train a model, check a model module against a CSV, score a CSV, or serve
the champions online.

``score`` scores with the registry's current model as the scoring DAG does. ``serve`` runs
the model service (``model_server``, under gunicorn) on the registries of ``--model-dir``,
as the stacks run it; it replaces this process.

``train --model dags/models/x.py`` (default: the ad-click model) records the run and the model
in MLflow when ``MLFLOW_TRACKING_URI`` is set (any URI MLflow accepts); without it nothing
loads MLflow. The model becomes current only if it also scores at least as well as the current
model of ``--model-dir`` (plus ``--min-improvement``) on the same hold-out; the summary's
``promoted`` and ``promotion`` (decision, reason, both scores) say how it went. A model that
loses to the champion is a success (exit 0).

Exit codes: 0 success, 1 other known error (model directory not writable, MLflow down, no
current model, a model file whose hash does not match the registry's), 2 bad data
(including a path that is not a regular file, or one over the size limit), a module that breaks
the contract, a fit that fails, or bad arguments, 3 the model failed the quality gate (its
summary is still printed).
Results go to stdout as JSON; problems go to stderr as one message, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adclick import candidates, contract, defaults, storage
from adclick.errors import (
    AdclickError,
    ConfigError,
    DataValidationError,
    FitError,
    QualityGateError,
)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_DATA = 2
EXIT_QUALITY_GATE = 3
# A bad CSV, a module that breaks the contract, a grid it refuses, a fit that fails: exit 2.
_BAD_INPUT = (DataValidationError, contract.ContractError, ConfigError, FitError)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return args.handler(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m adclick", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="validate the CSV, train, register the model")
    _model_argument(train, "--model")
    train.add_argument(
        "--data", type=_location, required=True, help="CSV file to train on (path or s3:// URL)"
    )
    train.add_argument(
        "--model-dir", type=_location, required=True, help="model registry (path or s3:// URL)"
    )
    gate = train.add_mutually_exclusive_group()
    gate.add_argument(
        "--gate",
        type=_gate,
        default=None,
        help="quality gate, METRIC>=X or METRIC<=X (an error metric); default: the module's",
    )
    gate.add_argument(
        "--min-accuracy",
        type=_bounded(float, 0, 1, True),
        default=None,
        help="shorthand of --gate 'accuracy>=X'",
    )
    train.add_argument(
        "--min-improvement",
        type=_bounded(float, 0, None, True),
        default=0.0,
        help="how much better than the current model, on the gate's metric, to replace it",
    )
    train.add_argument("--test-size", type=_bounded(float, 0, 1, False), default=defaults.TEST_SIZE)
    train.add_argument("--random-state", type=int, default=defaults.RANDOM_STATE)
    train.add_argument("--run-id", default=None, help="recorded in the model's metadata")
    train.add_argument("--min-rows", type=_bounded(int, 1, None, True), default=defaults.MIN_ROWS)
    train.add_argument(
        "--grid",
        type=_grid,
        default=candidates.DEFAULT_GRID,
        help='candidate hyperparameters as JSON, e.g. \'[{"C": 0.1}, {"C": 10}]\'; '
        "the best on the gate's metric is registered",
    )
    train.set_defaults(handler=_train)

    check = commands.add_parser(
        "check-model", help="check a model module against a CSV: columns, labels, a small fit"
    )
    _model_argument(check, "model")
    check.add_argument("--data", type=_location, required=True, help="CSV file (path or s3://)")
    check.set_defaults(handler=_check_model)

    score = commands.add_parser(
        "score", help="score a CSV with the registry's current model, as the scoring DAG does"
    )
    score.add_argument(
        "--model-dir", type=_location, required=True, help="model registry (path or s3:// URL)"
    )
    score.add_argument("--data", type=_location, required=True, help="CSV file to score")
    score.add_argument(
        "--output",
        type=_parquet_location,
        required=True,
        help="Parquet file to write; the CSV goes beside it (same name, .csv)",
    )
    score.add_argument(
        "--model",
        type=Path,
        default=None,
        help="the model's module, imported first when the model uses functions of it",
    )
    score.add_argument(
        "--chunk-rows", type=_bounded(int, 1, None, True), default=None, help="rows per chunk"
    )
    score.set_defaults(handler=_score)

    serve = commands.add_parser(
        "serve", help="serve each model's champion over HTTP (the stacks' model service)"
    )
    serve.add_argument(
        "--model-dir",
        type=str,
        required=True,
        help="the registries' root (path or s3:// URL): the default model's registry there, "
        "every other model's in <root>/<name>",
    )
    serve.add_argument(
        "--models",
        type=Path,
        default=DEFAULT_MODULE.parent,
        help="the folder of model modules (default: the repository's dags/models)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_bounded(int, 1, 65535, True), default=None)
    serve.set_defaults(handler=_serve)
    return parser


# The ad-click model, beside this package as the repository and the image lay them out.
DEFAULT_MODULE = (
    Path(__file__).resolve().parents[2]
    / "dags"
    / contract.MODELS_DIR
    / f"{contract.DEFAULT_MODEL}.py"
)


def _model_argument(parser: argparse.ArgumentParser, name: str) -> None:
    """The model module: a file the person running the command chose (never a conf's)."""
    if name.startswith("--"):
        parser.add_argument(
            name, type=Path, default=DEFAULT_MODULE, help="model module (default: the ad-click one)"
        )
    else:
        parser.add_argument(name, type=Path, help="model module, e.g. dags/models/churn.py")


def _location(text: str) -> storage.StoragePath:
    try:
        return storage.location(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parquet_location(text: str) -> storage.StoragePath:
    if not text.endswith(".parquet"):
        raise argparse.ArgumentTypeError(f"{text}: the output is a .parquet file")
    return _location(text)


def _bounded(
    kind: type, low: float, high: float | None, inclusive: bool
) -> Callable[[str], float | int]:
    """An argparse type that also checks the range, so bad values fail before any work."""

    def parse(text: str) -> float | int:
        value = kind(text)
        below = value < low if inclusive else value <= low
        above = high is not None and (value > high if inclusive else value >= high)
        if below or above:
            bounds = f"[{low}, {high}]" if inclusive else f"({low}, {high})"
            raise argparse.ArgumentTypeError(f"{text} is outside {bounds.replace('None', 'inf')}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _grid(text: str) -> list[dict[str, Any]]:
    """An argparse type: a grid of candidates as JSON, checked before any work."""
    try:
        return candidates.check_candidates(json.loads(text))
    except ValueError as exc:  # JSON errors are ValueErrors
        raise argparse.ArgumentTypeError(f"not a JSON list: {exc}") from None
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _gate(text: str) -> dict[str, Any]:
    try:
        return contract.parse_gate(text)
    except contract.ContractError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _train(args: argparse.Namespace) -> int:
    from adclick import source, steps  # scikit-learn and pandas load only for this command
    from adclick.tracking import tracker_from_env  # MLflow loads only with a tracking URI

    try:
        max_bytes = source.max_bytes_from_env()
        spec = contract.load_module(args.model)
        gate = args.gate or (
            {"metric": "accuracy", "min": args.min_accuracy}
            if args.min_accuracy is not None
            else spec.gate
        )
        gate = contract.check_gate(gate, spec)
    except _BAD_INPUT as exc:
        return _fail(exc, EXIT_BAD_DATA)
    try:
        tracker = tracker_from_env(model_name=spec.name)
    except ConfigError as exc:
        return _fail(exc, EXIT_ERROR)
    run_id = args.run_id or f"cli__{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    # stdout carries the JSON summary alone: whatever a library prints goes to stderr.
    stdout = sys.stdout
    with (
        tempfile.TemporaryDirectory(prefix="adclick-train-") as workdir,
        contextlib.redirect_stdout(sys.stderr),
    ):
        try:
            summary = steps.run(
                args.data,
                args.model_dir,
                Path(workdir),
                spec,
                gate=gate,
                test_size=args.test_size,
                random_state=args.random_state,
                run_id=run_id,
                min_rows=args.min_rows,
                max_bytes=max_bytes,
                candidates=args.grid,
                tracker=tracker,
                min_improvement=args.min_improvement,
            )
        except _BAD_INPUT as exc:
            return _fail(exc, EXIT_BAD_DATA)
        except QualityGateError as exc:
            _print_json(exc.result, stdout)
            return _fail(exc, EXIT_QUALITY_GATE)
        except AdclickError as exc:
            return _fail(exc, EXIT_ERROR)
    _print_json(summary)
    return EXIT_OK


def _check_model(args: argparse.Namespace) -> int:
    from adclick import readiness  # scikit-learn and pandas load only for this command

    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        try:
            report = readiness.check_model(args.model, args.data)
        except _BAD_INPUT as exc:
            return _fail(exc, EXIT_BAD_DATA)
        except AdclickError as exc:
            return _fail(exc, EXIT_ERROR)
    _print_json(report, stdout)
    return EXIT_OK


def _score(args: argparse.Namespace) -> int:
    from adclick import scoring, source  # pandas, pyarrow and scikit-learn load only here

    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        try:
            max_bytes = source.max_bytes_from_env()
            if args.model is not None:
                contract.load_module(args.model)
        except _BAD_INPUT as exc:
            return _fail(exc, EXIT_BAD_DATA)
        try:
            champion = scoring.load_champion(args.model_dir)
            chunking = {"chunk_rows": args.chunk_rows} if args.chunk_rows else {}
            summary = scoring.score_csv(
                args.data, champion, args.output, max_bytes=max_bytes, **chunking
            )
        except _BAD_INPUT as exc:
            return _fail(exc, EXIT_BAD_DATA)
        except AdclickError as exc:
            return _fail(exc, EXIT_ERROR)
    _print_json(summary, stdout)
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from adclick_contract import MODEL_SERVER_BIND

    try:
        storage.location(args.model_dir)
    except ConfigError as exc:
        return _fail(exc, EXIT_BAD_DATA)
    if not args.models.is_dir():
        return _fail(f"{args.models}: no folder of model modules", EXIT_BAD_DATA)
    port = args.port or int(MODEL_SERVER_BIND.rpartition(":")[2])
    env = {
        **os.environ,
        "MODEL_SERVER_MODEL_ROOT": args.model_dir,
        "MODEL_SERVER_MODELS_DIR": str(args.models.resolve()),
        "MODEL_SERVER_BIND": f"{args.host}:{port}",
    }
    import model_server

    conf = Path(model_server.__file__).resolve().parent / "gunicorn.conf.py"
    command = [sys.executable, "-m", "gunicorn", "-c", str(conf), "model_server:create_app()"]
    sys.stdout.flush()
    os.execve(sys.executable, command, env)  # gunicorn gets the signals from here on
    return EXIT_ERROR  # not reached


def _print_json(data: dict[str, Any], out: Any = None) -> None:
    print(json.dumps(data, indent=2, sort_keys=True), file=out or sys.stdout)


def _fail(problem: object, code: int) -> int:
    print(f"error: {problem}", file=sys.stderr)
    return code
