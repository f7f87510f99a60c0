"""Deterministic generator of a synthetic dataset with the public "Advertising" schema: the
ad-click model's data (``dags/models/adclick.py``).

The project ships its own sample (``data/advertising.csv``) instead of the public file. Each
class draws its numeric columns from truncated normal distributions whose centres and spreads
resemble the public data, with enough overlap that a logistic regression scores about 0.95.
Text columns are assembled from small word lists. Same rows and seed, same bytes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

TARGET = "Clicked on Ad"
# Column order of the public file.
COLUMNS: tuple[str, ...] = (
    "Daily Time Spent on Site",
    "Age",
    "Area Income",
    "Daily Internet Usage",
    "Ad Topic Line",
    "City",
    "Male",
    "Country",
    "Timestamp",
    TARGET,
)

DEFAULT_ROWS = 1000
DEFAULT_SEED = 20160327


@dataclass(frozen=True)
class Spread:
    """A truncated normal: centre and spread per class (not clicked, clicked), and bounds."""

    means: tuple[float, float]
    sds: tuple[float, float]
    low: float
    high: float
    decimals: int


NUMERIC = {
    "Daily Time Spent on Site": Spread((75.5, 55.0), (8.5, 12.5), 32.6, 91.4, 2),
    "Age": Spread((32.0, 40.0), (6.5, 8.8), 19, 61, 0),
    "Area Income": Spread((60500.0, 49500.0), (9500.0, 13500.0), 13996.5, 79484.8, 2),
    "Daily Internet Usage": Spread((212.0, 148.0), (25.0, 31.0), 104.8, 269.9, 2),
}
MALE_SHARE = (0.50, 0.46)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_TOPIC_FIRST = _words(
    "Adaptive Advanced Automated Balanced Centralized Configurable Cross-platform Customizable "
    "Decentralized Digitized Distributed Enhanced Expanded Focused Fundamental Grass-roots "
    "Horizontal Innovative Integrated Managed Monitored Multi-layered Networked Open-source "
    "Optimized Organic Persistent Proactive Reactive Robust Seamless Secured Streamlined "
    "Synchronized Universal User-centric Versatile Virtual Visionary"
)
_TOPIC_SECOND = _words(
    "24/7 analyzing asymmetric bi-directional bottom-line client-driven client-server "
    "context-sensitive dedicated discrete dynamic explicit fault-tolerant global heuristic "
    "holistic homogeneous hybrid impactful interactive intermediate local logistical mobile "
    "modular multi-tasking national neutral next-generation optimizing real-time regional "
    "responsive scalable static systematic tangible transitional upward-trending zero-defect"
)
_TOPIC_THIRD = _words(
    "ability access algorithm alliance analyzer application approach architecture archive "
    "benchmark capability challenge circuit collaboration concept contingency database "
    "definition emulation encoding encryption extranet firmware flexibility framework "
    "function groupware hierarchy hub implementation infrastructure initiative interface "
    "knowledgebase matrix methodology middleware migration model moderator monitoring "
    "orchestration paradigm policy portal process product project protocol service-desk "
    "software solution standardization strategy structure superstructure synergy system "
    "throughput time-frame toolset utilisation website workforce"
)
_CITY_PREFIX = ("", "", "", "", "North ", "South ", "East ", "West ", "New ", "Lake ", "Port ")
_CITY_ROOT = _words(
    "Alden Ashby Bellmont Brandon Carter Clay Dalton Davis Edge Ellis Fair Fox Glen Grant "
    "Hale Harris Holt Ivy Jordan Kings Lang Lynn Marsh Mason Milton Noble Oak Parker Pine "
    "Quinn Reed Rock Sandy Shaw Stone Taylor Thorn Vale Wells Whit Wood Wright York"
)
_CITY_SUFFIX = ("", *_words("ton ville burgh berg side haven mouth port fort view field"))
_COUNTRIES = (
    *_words(
        "Albania Algeria Argentina Armenia Australia Austria Bahamas Bangladesh Belgium Bolivia "
        "Brazil Bulgaria Cambodia Cameroon Canada Chile China Colombia Croatia Cyprus Denmark "
        "Ecuador Egypt Estonia Ethiopia Fiji Finland France Georgia Germany Ghana Greece Guatemala "
        "Hungary Iceland India Indonesia Ireland Italy Jamaica Japan Jordan Kenya Latvia Lebanon "
        "Lithuania Luxembourg Madagascar Malaysia Malta Mexico Mongolia Morocco Nauru Nepal "
        "Netherlands Nigeria Norway Pakistan Panama Peru Philippines Poland Portugal Qatar Romania "
        "Rwanda Senegal Serbia Singapore Slovakia Slovenia Spain Sweden Switzerland Tanzania "
        "Thailand Tunisia Turkey Uganda Ukraine Uruguay Vanuatu Vietnam Zambia Zimbabwe"
    ),
    *("Costa Rica", "New Zealand", "San Marino", "South Africa", "Sri Lanka"),
)
_FIRST_TIME = np.datetime64("2016-01-01T00:00:00")
_SPAN_SECONDS = int((np.datetime64("2016-07-24T23:59:59") - _FIRST_TIME) / np.timedelta64(1, "s"))


def generate(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """``rows`` rows, half of them clicked (the odd one not), shuffled, in the public order."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    rng = np.random.default_rng(seed)
    clicked = rng.permutation(np.arange(rows) < rows // 2).astype(np.int64)
    data: dict[str, object] = {
        name: _draw(rng, spread, clicked) for name, spread in NUMERIC.items()
    }
    data["Age"] = data["Age"].astype(np.int64)
    data["Male"] = (rng.random(rows) < np.take(MALE_SHARE, clicked)).astype(np.int64)
    data["Ad Topic Line"] = _join(rng, rows, _TOPIC_FIRST, _TOPIC_SECOND, _TOPIC_THIRD, sep=" ")
    data["City"] = _join(rng, rows, _CITY_PREFIX, _CITY_ROOT, _CITY_SUFFIX, sep="")
    data["Country"] = _pick(rng, _COUNTRIES, rows)
    seconds = rng.integers(_SPAN_SECONDS + 1, size=rows)
    stamps = np.datetime_as_string(_FIRST_TIME + seconds.astype("timedelta64[s]"), unit="s")
    data["Timestamp"] = np.char.replace(stamps, "T", " ").astype(object)
    data[TARGET] = clicked
    return pd.DataFrame({column: data[column] for column in COLUMNS})


def _draw(rng: np.random.Generator, spread: Spread, clicked: np.ndarray) -> np.ndarray:
    """Truncated normal per class by redrawing out-of-range values (no pile-up at the bounds)."""
    means = np.take(spread.means, clicked)
    sds = np.take(spread.sds, clicked)
    values = rng.normal(means, sds)
    outside = (values < spread.low) | (values > spread.high)
    while outside.any():
        values[outside] = rng.normal(means[outside], sds[outside])
        outside = (values < spread.low) | (values > spread.high)
    return values.round(spread.decimals)


def _join(rng: np.random.Generator, rows: int, *parts: tuple[str, ...], sep: str) -> np.ndarray:
    picked = [_pick(rng, words, rows) for words in parts]
    joined = picked[0]
    for words in picked[1:]:
        joined = joined + sep + words
    return joined


def _pick(rng: np.random.Generator, words: tuple[str, ...], rows: int) -> np.ndarray:
    return np.asarray(words, dtype=object)[rng.integers(len(words), size=rows)]


def write_csv(path: Path, rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> Path:
    """Write the sample atomically (temp file + rename), so readers never see half a file."""
    path = Path(path)
    frame = generate(rows, seed)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            frame.to_csv(handle, index=False, lineterminator="\n")
        os.chmod(temp, 0o644)  # mkstemp makes it private; a data file is meant to be shared
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def main() -> None:
    """``python -m testkit.advertising --rows N --out PATH``: write a sample of that size."""
    parser = argparse.ArgumentParser(prog="python -m testkit.advertising")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    write_csv(args.out, rows=args.rows, seed=args.seed)


if __name__ == "__main__":
    main()
