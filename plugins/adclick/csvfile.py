"""The CSV file as bytes and lines: encoding, header, and CSV line numbers.

Everything that can go wrong before pandas sees the file is caught here, in one streaming pass
over the opened file (:mod:`adclick.source`) that also hashes it, so pandas is only ever
handed readable UTF-8 text.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from adclick.errors import ConfigError, DataValidationError
from adclick.source import OpenedFile

CHUNK_BYTES = 1 << 20
MAX_HEADER_BYTES = 1 << 20
# A header-only megabyte can name ~140 000 columns; every check after the header (and pandas)
# pays for each one, so a header wider than this is refused before anything looks at names.
MAX_COLUMNS_VARIABLE = "ADCLICK_MAX_COLUMNS"
DEFAULT_MAX_COLUMNS = 10_000
OTHER_DELIMITERS = ((";", "';'-delimited"), ("\t", "tab-delimited"), ("|", "'|'-delimited"))
MAGIC = (
    (b"\x1f\x8b", "a gzip archive; unpack it first"),
    (b"PK\x03\x04", "a ZIP archive or an Excel workbook; export it as CSV"),
    (codecs.BOM_UTF16_LE, "UTF-16 encoded text; save it as UTF-8"),
    (codecs.BOM_UTF16_BE, "UTF-16 encoded text; save it as UTF-8"),
)


@dataclass(frozen=True)
class CsvFile:
    """A readable UTF-8 CSV file and its header, names stripped of surrounding whitespace."""

    source: OpenedFile
    sha256: str
    encoding: str
    header: tuple[str, ...]

    @property
    def path(self) -> Path:
        return self.source.path

    def position(self, column: str) -> int:
        return self.header.index(column)


def max_columns_from_env() -> int:
    """The column limit: ``ADCLICK_MAX_COLUMNS``, default :data:`DEFAULT_MAX_COLUMNS`."""
    raw = os.environ.get(MAX_COLUMNS_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_MAX_COLUMNS
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{MAX_COLUMNS_VARIABLE} must be a positive whole number, got {raw!r}")
    return int(raw)


def inspect(
    source: OpenedFile, required: Sequence[str] = (), max_columns: int | None = None
) -> CsvFile:
    """Check that ``source`` is a non-empty UTF-8 file with a usable header naming the
    ``required`` columns (a model's, see :mod:`adclick.contract`); hash it on the way.

    A UTF-8 byte order mark is accepted (spreadsheet exports write one). Header names are
    compared after stripping surrounding whitespace (``"Age "`` is ``"Age"``); case matters.
    Columns beyond the required ones are allowed, up to ``max_columns`` in all (default:
    :func:`max_columns_from_env`); duplicate names are not.
    """
    limit = max_columns_from_env() if max_columns is None else max_columns
    try:
        sha256, first = _scan(source)
    except OSError as exc:
        raise DataValidationError(
            source.path, f"cannot read the file: {exc.strerror or exc}"
        ) from exc
    encoding = "utf-8-sig" if first.startswith(codecs.BOM_UTF8) else "utf-8"
    header = _parse_header(source.path, first.decode(encoding, errors="replace"), required, limit)
    return CsvFile(source=source, sha256=sha256, encoding=encoding, header=header)


def _scan(source: OpenedFile) -> tuple[str, bytes]:
    """Hash the file and prove it is UTF-8 text without NUL bytes; return its first line."""
    path = source.path
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines_before = 0
    size = 0
    with source.binary() as handle:
        chunk = handle.read(CHUNK_BYTES)
        if not chunk:
            raise DataValidationError(path, "the file is empty")
        for magic, what in MAGIC:
            if chunk.startswith(magic):
                raise DataValidationError(path, f"looks like {what}")
        first = _first_line(path, chunk)
        while chunk:
            size += len(chunk)
            if size > source.max_bytes:  # it grew after it was opened
                raise source.too_large(size)
            digest.update(chunk)
            _check_text(path, decoder, chunk, newlines_before)
            newlines_before += chunk.count(b"\n")
            chunk = handle.read(CHUNK_BYTES)
        _check_text(path, decoder, b"", newlines_before, final=True)
    return digest.hexdigest(), first


def _first_line(path: Path, chunk: bytes) -> bytes:
    ends = [i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0]
    end = min(ends, default=-1)
    if end < 0 and len(chunk) >= MAX_HEADER_BYTES:
        raise DataValidationError(
            path, f"line 1 is longer than {MAX_HEADER_BYTES} bytes: not a CSV header"
        )
    return chunk if end < 0 else chunk[:end]


def _check_text(
    path: Path,
    decoder: codecs.IncrementalDecoder,
    chunk: bytes,
    newlines_before: int,
    final: bool = False,
) -> None:
    nul = chunk.find(b"\x00")
    if nul >= 0:
        line = newlines_before + chunk.count(b"\n", 0, nul) + 1
        raise DataValidationError(
            path,
            "contains NUL bytes: a binary file or UTF-16 text, not a UTF-8 CSV file",
            lines=[line],
        )
    pending = decoder.getstate()[0]
    try:
        decoder.decode(chunk, final=final)
    except UnicodeDecodeError as exc:
        data = pending + chunk
        line = newlines_before + data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start] if exc.start < len(data) else None
        found = f"byte 0x{byte:02x}" if byte is not None else "a truncated character"
        raise DataValidationError(
            path,
            f"not valid UTF-8 ({found}); save the file as UTF-8 (latin-1 or Windows encodings "
            "are not accepted)",
            lines=[line],
        ) from None


def _parse_header(
    path: Path, line: str, required: Sequence[str], max_columns: int
) -> tuple[str, ...]:
    if not line.strip():
        raise DataValidationError(path, "the header is blank; it must name the columns", lines=[1])
    try:
        names = tuple(name.strip() for name in next(csv.reader([line])))
    except csv.Error as exc:
        raise DataValidationError(path, f"the header cannot be parsed: {exc}", lines=[1]) from None
    if len(names) > max_columns:
        raise DataValidationError(
            path,
            f"the header has {len(names):,} columns, more than the limit of {max_columns:,} "
            f"({MAX_COLUMNS_VARIABLE})",
            lines=[1],
        )
    present = set(names)
    missing = [column for column in required if column not in present]
    if missing:
        found = len(required) - len(missing)
        for delimiter, description in OTHER_DELIMITERS:
            if _count_required(line.split(delimiter), required) > found:
                raise DataValidationError(
                    path, f"looks like {description}; the file must be comma-separated", lines=[1]
                )
        raise DataValidationError(path, _missing_message(missing, names), lines=[1])
    if len(present) < len(names):
        raise DataValidationError(
            path, f"duplicate column names in the header: {_duplicates(names)}", lines=[1]
        )
    return names


def _duplicates(names: tuple[str, ...], shown: int = 5) -> str:
    """``'a' in columns 1, 4; 'b' in columns 2, 3``, in one pass over the header; at most
    ``shown`` names, and columns of each, are listed."""
    positions: dict[str, list[int]] = {}
    for index, name in enumerate(names, start=1):
        positions.setdefault(name, []).append(index)
    repeated = sorted(name for name, where in positions.items() if len(where) > 1)
    listed = "; ".join(
        f"'{_shorten(name)}' in columns {_first(positions[name], shown)}"
        for name in repeated[:shown]
    )
    return listed + (f"; {len(repeated)} names in all" if len(repeated) > shown else "")


def _first(numbers: list[int], shown: int) -> str:
    more = f", ... ({len(numbers)} in all)" if len(numbers) > shown else ""
    return ", ".join(map(str, numbers[:shown])) + more


def _count_required(fields: list[str], required: Sequence[str]) -> int:
    names = {field.strip().strip('"') for field in fields}
    return sum(column in names for column in required)


def _missing_message(missing: list[str], names: tuple[str, ...]) -> str:
    listed = ", ".join(f"'{column}'" for column in missing)
    plural = "s" if len(missing) > 1 else ""
    hints = []
    for column in missing:
        close = difflib.get_close_matches(column, names, n=1, cutoff=0.6) or [
            name for name in names if name.lower() == column.lower()
        ]
        if close:
            hints.append(f"'{close[0]}' for '{column}'")
    header = ", ".join(f"'{_shorten(name)}'" for name in names[:12])
    if len(names) > 12:
        header += f", ... ({len(names)} columns)"
    message = f"missing required column{plural} {listed} in the header; it has {header}"
    return message + (f" (did you mean {', '.join(hints)}?)" if hints else "")


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextmanager
def _large_fields() -> Iterator[None]:
    """csv's default 128 KiB field limit would turn a huge field into a second kind of error."""
    previous = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def records(csvfile: CsvFile) -> Iterator[tuple[int, list[str]]]:
    """Data records with the editor line each starts on, skipping blank lines as pandas does.

    Only used to explain an error, so its cost is paid on the failure path alone.
    """
    with (
        _large_fields(),
        csvfile.source.text(csvfile.encoding) as handle,
    ):
        reader = csv.reader(handle)
        try:
            next(reader, None)
            start = reader.line_num + 1
            for fields in reader:
                if fields and (len(fields) > 1 or fields[0].strip()):
                    yield start, fields
                start = reader.line_num + 1
        except csv.Error:
            return  # explaining an error must not raise another; lines found so far stand


def lines_of(csvfile: CsvFile, indices: Iterable[int]) -> list[int]:
    """Editor line numbers of data rows given by 0-based position among the data records."""
    wanted = sorted(set(indices))
    found: dict[int, int] = {}
    if wanted:
        for index, (line, _) in enumerate(records(csvfile)):
            if index in wanted:
                found[index] = line
            if index >= wanted[-1]:
                break
    return [found[i] for i in wanted if i in found]


def ragged_rows(csvfile: CsvFile) -> DataValidationError | None:
    """The error for rows whose field count differs from the header's, if there are any."""
    expected = len(csvfile.header)
    bad = [(line, len(fields)) for line, fields in records(csvfile) if len(fields) != expected]
    if not bad:
        return None
    if len(bad) == 1:
        found = bad[0][1]
        problem = f"{found} field{'' if found == 1 else 's'} where the header has {expected}"
    else:
        counts = ", ".join(f"line {line}: {n}" for line, n in bad[:3])
        problem = f"wrong number of fields ({counts}; the header has {expected})"
    if any(n > expected for _, n in bad):
        problem += "; a text field containing a comma must be quoted"
    return DataValidationError(
        csvfile.path, problem, lines=[line for line, _ in bad], count=len(bad)
    )


def unclosed_quote_line(csvfile: CsvFile) -> int:
    """Line of the record a never-closed quote swallowed: the last one the reader yields."""
    last = 1
    for line, _ in records(csvfile):
        last = line
    return last
