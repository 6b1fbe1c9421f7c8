"""Offline comparisons: two files or frames, or a registered version's reference against one file.

Files are streamed in chunks of ``chunk_rows`` (Parquet through pyarrow with a small read buffer, CSV through
pandas' chunked reader with its type inference), so memory follows the chunk, not the file; the maths is the
live report's (``monitoring.offline``). A file that cannot be read, or is neither CSV nor Parquet, is refused
in one line naming it; an empty file is a report that says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.core.signature import FeatureType
from shipyard.core.versions import ModelVersion
from shipyard.errors import InvalidArgumentError
from shipyard.monitoring.offline import SAMPLE_ROWS, ComparisonBuilder, frame_kinds
from shipyard.monitoring.offline_records import ComparisonReport
from shipyard.monitoring.thresholds import DriftThresholds

if TYPE_CHECKING:
    import pandas as pd

CHUNK_ROWS = 131_072
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
Data = Any  # a path (str or Path) to a CSV or Parquet file, or a pandas DataFrame


def utcnow() -> datetime:
    return datetime.now(UTC)


class Dataset:
    """One side opened for streaming: its name, each column's kind, and its chunks (columns by name)."""

    def __init__(self, name: str, kinds: Mapping[str, str], chunks: Callable[[], Iterator[dict[str, Any]]]) -> None:
        self.name = name
        self.kinds = dict(kinds)
        self.chunks = chunks


def open_dataset(data: Data, *, chunk_rows: int = CHUNK_ROWS, what: str = "data") -> Dataset:
    """A DataFrame, or a CSV or Parquet file by its suffix; refused in one line when it cannot be read."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return _frame(data, chunk_rows, name=f"{what} frame")
    if not isinstance(data, str | Path):
        raise InvalidArgumentError(
            f"the {what} must be a CSV or Parquet path or a pandas DataFrame, got {type(data).__name__}"
        )
    path = Path(data)
    if path.is_dir() or not path.exists():
        raise InvalidArgumentError(f"{what} file {path} {'is a directory' if path.is_dir() else 'does not exist'}")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InvalidArgumentError(
            f"{what} file {path}: unknown format {path.suffix or '(no suffix)'!r}; use .csv or .parquet"
        )
    return _parquet(path, chunk_rows) if kind == "parquet" else _csv(path, chunk_rows)


def _frame(frame: pd.DataFrame, chunk_rows: int, *, name: str) -> Dataset:
    frame = frame.rename(columns=str)

    def chunks() -> Iterator[dict[str, Any]]:
        for start in range(0, len(frame), chunk_rows):
            part = frame.iloc[start : start + chunk_rows]
            yield {str(c): part[c].reset_index(drop=True) for c in part.columns}

    return Dataset(name, frame_kinds(frame), chunks)


def _arrow_kind(dtype: Any) -> str:
    import pyarrow as pa

    if pa.types.is_dictionary(dtype):
        return f"text ({dtype.value_type})"
    if pa.types.is_boolean(dtype):
        return "boolean (bool)"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return f"number ({dtype})"
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return f"date ({dtype})"
    return f"text ({dtype})"


def _parquet(path: Path, chunk_rows: int) -> Dataset:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidArgumentError(f"cannot read {path} as Parquet: {exc}") from exc
    # A DataFrame's index that pandas wrote beside the data (``__index_level_0__``) is not a column of it.
    index = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
    fields = [f for f in schema if f.name not in index]
    text = [f.name for f in fields if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    kinds = {f.name: _arrow_kind(f.type) for f in fields}

    def chunks() -> Iterator[dict[str, Any]]:
        try:
            # pre_buffer=False: pyarrow would otherwise keep the row groups it read, and memory grow with the file.
            source = pq.ParquetFile(path, read_dictionary=text, pre_buffer=False)
            for batch in source.iter_batches(batch_size=chunk_rows, columns=list(kinds)):
                yield {
                    name: _arrow_column(column) for name, column in zip(batch.schema.names, batch.columns, strict=True)
                }
        except (pa.ArrowException, OSError) as exc:
            raise InvalidArgumentError(f"cannot read {path} as Parquet: {exc}") from exc

    return Dataset(str(path), kinds, chunks)


def _arrow_column(column: Any) -> Any:
    """Floats as NumPy views, text as pandas Categoricals (counted by code), the rest as pandas reads them."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_floating(kind) or (pa.types.is_integer(kind) and column.null_count == 0):
        return column.to_numpy(zero_copy_only=False)
    if pa.types.is_boolean(kind) and column.null_count == 0:
        return column.to_numpy(zero_copy_only=False)
    return column.to_pandas()


def _csv(path: Path, chunk_rows: int) -> Dataset:
    import pandas as pd

    def reader() -> Any:
        return pd.read_csv(path, chunksize=chunk_rows, low_memory=False)

    try:
        with reader() as chunks_of:
            first = next(iter(chunks_of), None)
    except pd.errors.EmptyDataError:
        return Dataset(str(path), {}, lambda: iter(()))
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise InvalidArgumentError(f"cannot read {path} as CSV: {' '.join(str(exc).split())}") from exc
    if first is None:
        return Dataset(str(path), {}, lambda: iter(()))
    # A header without rows says nothing about types: its columns are of no kind, and compare with any.
    kinds = frame_kinds(first) if len(first) else {str(c): "unknown (no rows)" for c in first.columns}

    def chunks() -> Iterator[dict[str, Any]]:
        try:
            with reader() as stream:
                for part in stream:
                    yield {str(c): part[c].reset_index(drop=True) for c in part.columns}
        except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
            raise InvalidArgumentError(f"cannot read {path} as CSV: {' '.join(str(exc).split())}") from exc

    return Dataset(str(path), kinds, chunks)


def compare(
    reference: Data,
    current: Data,
    *,
    target: str | None = None,
    prediction: str | None = None,
    thresholds: DriftThresholds | None = None,
    multivariate: bool = True,
    chunk_rows: int = CHUNK_ROWS,
    clock: Callable[[], datetime] = utcnow,
) -> ComparisonReport:
    """``current`` against ``reference`` (paths or frames): the live report's sections, offline."""
    ref = open_dataset(reference, chunk_rows=chunk_rows, what="reference")
    cur = open_dataset(current, chunk_rows=chunk_rows, what="current")
    comparison = ComparisonBuilder(
        reference_name=ref.name,
        reference_kinds=ref.kinds,
        target=target,
        prediction=prediction,
        sample_rows=SAMPLE_ROWS if multivariate else 0,  # the row sample is only the domain classifier's
    )
    for chunk in ref.chunks():
        comparison.add_reference(chunk)
    comparison.start_current(cur.name, cur.kinds)
    for chunk in cur.chunks():
        comparison.add_current(chunk)
    return comparison.finish(generated_at=clock(), thresholds=thresholds, multivariate=multivariate)


def compare_with_version(
    version: ModelVersion,
    current: Data,
    *,
    target: str | None = None,
    prediction: str | None = None,
    thresholds: DriftThresholds | None = None,
    chunk_rows: int = CHUNK_ROWS,
    clock: Callable[[], datetime] = utcnow,
) -> ComparisonReport:
    """``current`` against a registered version's reference profile; its signature decides the types."""
    profile = version.reference_profile
    if profile is None:
        raise InvalidArgumentError(
            f"{version.ref} has no reference profile to compare with: register it with training_data=…"
        )
    kinds = {spec.name: _signature_kind(spec.type) for spec in version.signature.features}
    cur = open_dataset(current, chunk_rows=chunk_rows, what="current")
    comparison = ComparisonBuilder(
        reference_name=f"{version.ref} (reference profile)",
        reference_kinds=kinds,
        reference_profile=profile,
        target=target,
        prediction=prediction,
    )
    comparison.start_current(cur.name, cur.kinds)
    for chunk in cur.chunks():
        comparison.add_current(chunk)
    output = version.signature.output
    classes = list(output.classes) if output.classes else None
    return comparison.finish(
        generated_at=clock(),
        thresholds=thresholds,
        classification=output.kind.value == "classification" if output.kind.value != "tensor" else None,
        classes=classes,
    )


def _signature_kind(kind: FeatureType) -> str:
    word = {
        FeatureType.INTEGER: "number",
        FeatureType.FLOAT: "number",
        FeatureType.BOOLEAN: "boolean",
        FeatureType.DATETIME: "date",
    }.get(kind, "text")
    return f"{word} ({kind.value} in the signature)"
