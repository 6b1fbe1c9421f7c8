"""Batch scoring's files: the input read as a stream of exact-size chunks, the output written atomically.

Reading and writing are kept apart from the scoring because they are about files, not models: a CSV or
Parquet input is checked and opened with pyarrow so that memory follows the chunk size rather than the
file (CSV columns all read as text, Parquet read through a small buffer), duplicate columns and unreadable
files are refused with the file's name, and each output (Parquet or CSV, by its suffix) is written under a
temporary name and renamed into place only on commit, so a failed job leaves nothing half-written.
``batch.py`` keeps the use case and the chunk scorer.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from shipyard.errors import InvalidArgumentError

CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")

_CSV_SAMPLE_BYTES = 1 << 20
_CSV_BLOCK_BYTES = 1 << 20
_PARQUET_BUFFER_BYTES = 1 << 18


# -- input -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowCount:
    """How many data rows an input holds: exact from Parquet metadata, estimated from a CSV's size."""

    rows: int
    exact: bool


def count_rows(input_path: str | Path) -> RowCount:
    """Rows to expect, for a progress bar: Parquet says exactly; a CSV is estimated from its first MiB."""
    path = input_file(input_path)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            return RowCount(pq.ParquetFile(path).metadata.num_rows, exact=True)
        except (pa.ArrowException, OSError) as exc:
            raise _unreadable(path, exc) from exc
    size = path.stat().st_size
    bytes_per_row, header_bytes, _ = _csv_sample(path)
    return RowCount(max(0, round((size - header_bytes) / bytes_per_row)), exact=False)


class Source:
    """An opened input: its column schema (features typed as read) and a stream of exact-size chunks."""

    def __init__(self, path: Path, schema: pa.Schema, open_batches: Callable[[], Iterator[pa.RecordBatch]], rows: int):
        self.path = path
        self.schema = schema
        self._open_batches = open_batches
        self._rows = rows

    def chunks(self) -> Iterator[pa.Table]:
        """Tables of exactly ``rows`` rows (the last may be shorter), whatever sizes the reader yields."""
        pending: list[pa.RecordBatch] = []
        count = 0
        try:
            for batch in self._open_batches():
                while batch.num_rows:
                    take = min(self._rows - count, batch.num_rows)
                    pending.append(batch.slice(0, take))
                    count += take
                    batch = batch.slice(take)
                    if count == self._rows:
                        yield pa.Table.from_batches(pending, schema=self.schema)
                        pending, count = [], 0
        except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
            raise _unreadable(self.path, exc) from exc
        if count:
            yield pa.Table.from_batches(pending, schema=self.schema)


def input_file(input_path: str | Path) -> Path:
    """The input's path, refused unless it is an existing .csv or .parquet file."""
    path = Path(input_path)
    if path.is_dir():
        raise InvalidArgumentError(f"input file {path} is a directory; name a .csv or .parquet file")
    if not path.is_file():
        raise InvalidArgumentError(f"input file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise InvalidArgumentError(f"input file {path} must be .csv or .parquet, not {suffix or 'without a suffix'!r}")
    return path


def open_input(input_path: str | Path, chunk_rows: int) -> Source:
    """The input opened for reading in chunks of ``chunk_rows``, by its suffix: CSV or Parquet."""
    path = input_file(input_path)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return _open_parquet(path, chunk_rows)
    return _open_csv(path, chunk_rows)


def _open_parquet(path: Path, chunk_rows: int) -> Source:
    try:
        schema = pq.ParquetFile(path).schema_arrow.remove_metadata()
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(path, exc) from exc

    def batches() -> Iterator[pa.RecordBatch]:
        # Opened per pass so the file handle lives only as long as the job reads it.
        # No pre-buffering, and column chunks read through a small buffer: otherwise pyarrow reads
        # ahead whole row groups (or the whole file), and memory follows the file instead of the chunk.
        file = pq.ParquetFile(path, pre_buffer=False, buffer_size=_PARQUET_BUFFER_BYTES)
        try:
            for batch in file.iter_batches(batch_size=chunk_rows):
                yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)
        finally:
            file.close()

    return Source(path, schema, batches, chunk_rows)


def _open_csv(path: Path, chunk_rows: int) -> Source:
    _, _, longest_line = _csv_sample(path)
    # pyarrow reads up to ~32 blocks ahead of the consumer, so memory follows the block size: keep blocks
    # small (1 MiB, pyarrow's default) unless rows are long, and let the re-chunking build whole chunks.
    block_size = min(max(_CSV_BLOCK_BYTES, 4 * longest_line), 1 << 30)
    read = pa_csv.ReadOptions(block_size=block_size, use_threads=False)
    parse = pa_csv.ParseOptions(newlines_in_values=True)
    try:
        with pa_csv.open_csv(path, read_options=read, parse_options=parse) as probe:
            names = probe.schema.names
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(path, exc) from exc
    _check_unique(path, names)
    # Every column is read as text: types come from the signature, never from a guess on the first block.
    convert = pa_csv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=True)
    schema = pa.schema([pa.field(n, pa.string()) for n in names])

    def batches() -> Iterator[pa.RecordBatch]:
        with pa_csv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert) as reader:
            yield from reader

    return Source(path, schema, batches, chunk_rows)


def _csv_sample(path: Path) -> tuple[float, int, int]:
    """Average bytes per data row, the header's size and the longest line, from the file's first MiB."""
    with path.open("rb") as file:
        sample = file.read(_CSV_SAMPLE_BYTES)
    header_end = sample.find(b"\n") + 1 or len(sample)
    body = sample[header_end:]
    lines = body.count(b"\n") + (1 if body and not body.endswith(b"\n") else 0)
    longest = max((len(line) for line in sample.split(b"\n")), default=0)
    return (len(body) / lines if lines else 64.0), header_end, longest


def _check_unique(path: Path, names: list[str]) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidArgumentError(f"input file {path} has duplicate column names {dupes}; rename them")


def _unreadable(path: Path, exc: BaseException) -> InvalidArgumentError:
    return InvalidArgumentError(f"cannot read input file {path}: {type(exc).__name__}: {exc}")


def output_file(output_path: str | Path, input_path: Path, *, what: str) -> Path:
    """An output's path: a .parquet or .csv file in an existing directory, not a directory, not the input."""
    path = Path(output_path)
    if path.suffix.lower() not in PARQUET_SUFFIXES + CSV_SUFFIXES:
        raise InvalidArgumentError(f"{what} file {path} must end in .parquet or .csv")
    if not path.parent.is_dir():
        raise InvalidArgumentError(f"the directory of {what} file {path} does not exist; create {path.parent} first")
    if path.is_dir():
        raise InvalidArgumentError(f"{what} file {path} is a directory; name a file inside it")
    if path.resolve() == input_path.resolve():
        raise InvalidArgumentError(f"{what} file {path} is the input file; write to another path")
    probe = _temporary(path)  # a directory that refuses files fails here, before the model is loaded
    try:
        probe.touch(exist_ok=False)
    except OSError as exc:
        raise _unwritable(path, exc, what=what) from exc
    probe.unlink(missing_ok=True)
    return path


def _unwritable(path: Path, exc: OSError, *, what: str = "output") -> InvalidArgumentError:
    return InvalidArgumentError(f"cannot write {what} file {path}: {exc.strerror or exc}")


# -- output ----------------------------------------------------------------------------------------


class AtomicOutput(Protocol):
    """A table file written chunk by chunk under a temporary name, published by ``commit``."""

    target: Path

    @property
    def opened(self) -> bool: ...

    def write(self, table: pa.Table) -> None: ...

    def commit(self) -> None: ...

    def discard(self) -> None: ...


def atomic_output(target: Path) -> AtomicOutput:
    """The writer for ``target``'s format: CSV for a .csv name, Parquet otherwise."""
    return AtomicCsv(target) if target.suffix.lower() in CSV_SUFFIXES else AtomicParquet(target)


def _temporary(target: Path) -> Path:
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")


@contextmanager
def _writing(target: Path) -> Iterator[None]:
    """A full disk or a directory that went away mid-job is the user's to fix: one line naming the file."""
    try:
        yield
    except OSError as exc:
        raise _unwritable(target, exc) from exc


class _AtomicTable:
    """A table file written chunk by chunk to a temporary name beside its target, renamed there on commit.

    Later chunks are cast to the first chunk's schema (e.g. int32 predictions in one chunk, int64 in the
    first); subclasses say how the file is opened.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        self.temp = _temporary(target)
        self._writer: Any = None
        self._schema: pa.Schema | None = None

    @property
    def opened(self) -> bool:
        return self._writer is not None

    def _open(self, schema: pa.Schema) -> Any:
        raise NotImplementedError

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            with _writing(self.target):
                self._writer = self._open(table.schema)
            self._schema = table.schema
        elif table.schema != self._schema:
            table = table.cast(self._schema)
        with _writing(self.target):
            self._writer.write_table(table)

    def commit(self) -> None:
        if self._writer is None:
            return
        with _writing(self.target):
            self._writer.close()
            self._writer = None
            os.replace(self.temp, self.target)

    def discard(self) -> None:
        """Drop an uncommitted file; a no-op after commit. Quiet: it runs while another error is reported."""
        with suppress(OSError):
            if self._writer is not None:
                writer, self._writer = self._writer, None
                writer.close()
        with suppress(OSError):
            self.temp.unlink(missing_ok=True)


class AtomicParquet(_AtomicTable):
    """A Parquet file, published whole or not at all."""

    def _open(self, schema: pa.Schema) -> pq.ParquetWriter:
        # Dictionary encoding pays off for text (categories) but costs several times the write time
        # on high-cardinality numbers, where pyarrow tries it first and then falls back.
        text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        return pq.ParquetWriter(self.temp, schema, use_dictionary=text or False)


class AtomicCsv(_AtomicTable):
    """A CSV file (header row, then the rows), published whole or not at all.

    The columns are those of the Parquet output: the input's, ``prediction``, one ``proba_<class>`` per
    class. Missing values are empty fields; text is quoted where it needs to be.
    """

    def _open(self, schema: pa.Schema) -> pa_csv.CSVWriter:
        return pa_csv.CSVWriter(self.temp, schema)
