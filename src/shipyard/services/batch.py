"""Batch scoring: a CSV or Parquet file through a model, in chunks, to a CSV or Parquet file plus a rejects file.

Memory stays bounded by the chunk size: input is streamed with pyarrow, output written chunk by chunk,
so a file larger than memory works. Rows that break the signature, or that the model itself fails on,
go to a rejects file with their reason instead of stopping the job.

The output holds the input columns, then ``prediction``, then for classifiers one ``proba_<class>``
column per class (float64). A feature column stored as text (always, for CSV) is parsed to the
signature's type: numbers to float64, booleans from true/false/1/0; other text columns stay strings,
because a CSV carries no types and a guess made on the first chunk could fail on a later one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.core.refs import ModelRef
from shipyard.core.signature import FeatureSpec, FeatureType
from shipyard.errors import (
    InvalidArgumentError,
    InvalidRefError,
    ModelNotFoundError,
    PredictionError,
    ShipyardError,
    SignatureError,
)
from shipyard.flavors.loaded import LoadedModel, Prediction

# Re-exported: `shipyard batch` takes the row count for its progress bar from the use case's module.
from shipyard.services.batch_io import RowCount as RowCount
from shipyard.services.batch_io import Source, atomic_output, input_file, open_input, output_file
from shipyard.services.batch_io import count_rows as count_rows
from shipyard.services.endpoints import EndpointNotFoundError, EndpointService
from shipyard.services.registry import RegistryService

DEFAULT_CHUNK_ROWS = 50_000
PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "proba_"
REJECT_COLUMNS = ("row", "reason")

_ROW_PREFIX = re.compile(r"^row \d+: ")
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """What a batch job did, for the closing summary and for scripts."""

    rows_in: int
    rows_scored: int
    rows_rejected: int
    seconds: float
    rows_per_s: float
    output_path: Path
    rejects_path: Path | None


class Services(Protocol):
    """The two services resolution needs; a Workspace has both."""

    registry: RegistryService
    endpoints: EndpointService


def resolve_model(services: Services, ref_or_endpoint: str, *, trusted: bool = False) -> LoadedModel:
    """Load what an endpoint serves, or else the model ref given; an endpoint name wins over a model name."""
    try:
        endpoint = services.endpoints.get(ref_or_endpoint)
    except EndpointNotFoundError:
        pass
    else:
        return services.registry.load(endpoint.model, trusted=trusted)
    try:
        ref = ModelRef.parse(ref_or_endpoint)
    except InvalidRefError as exc:
        raise InvalidRefError(f"{ref_or_endpoint!r} is neither an endpoint name nor a model reference: {exc}") from exc
    try:
        return services.registry.load(ref, trusted=trusted)
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(
            f"no endpoint or model named {ref.name!r}; `shipyard endpoints list` and `shipyard models list` "
            "show what exists"
        ) from exc


def score_file(
    model: LoadedModel,
    input_path: str | Path,
    output_path: str | Path,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    rejects_path: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> BatchSummary:
    """Score every row of a CSV/Parquet file into ``output_path``; a failed job leaves no output behind.

    ``progress`` is called with the number of rows finished after each chunk. Rejects go to
    ``rejects_path`` (default ``<output stem>.rejects.<output suffix>``), written only when there are any.
    """
    started = clock()
    if chunk_rows < 1:
        raise InvalidArgumentError(f"chunk_rows must be at least 1, got {chunk_rows}")
    output, rejects = check_paths(input_path, output_path, rejects_path)
    source = open_input(input_path, chunk_rows)
    scorer = _ChunkScorer(model, source)
    out_writer = atomic_output(output)
    rejects_writer = atomic_output(rejects)
    rows_in = rows_scored = rows_rejected = 0
    try:
        for chunk in source.chunks():
            scored, rejected = scorer.score(chunk, offset=rows_in)
            if scored is not None:
                out_writer.write(scored)
                rows_scored += scored.num_rows
            if rejected is not None:
                rejects_writer.write(rejected)
                rows_rejected += rejected.num_rows
            rows_in += chunk.num_rows
            if progress is not None:
                progress(chunk.num_rows)
        if not out_writer.opened:
            out_writer.write(scorer.empty_output())
        rejects_written = rejects_writer.opened
        # Rejects first: if publishing the output fails after that, the rejects alone mislead less than
        # an output whose rejects went missing.
        if rejects_written:
            rejects_writer.commit()
        elif rejects.exists():
            rejects.unlink()  # left by an earlier run; the rejects beside an output always belong to it
        out_writer.commit()
    finally:
        out_writer.discard()
        rejects_writer.discard()
    seconds = max(clock() - started, 1e-9)
    return BatchSummary(
        rows_in=rows_in,
        rows_scored=rows_scored,
        rows_rejected=rows_rejected,
        seconds=seconds,
        rows_per_s=rows_in / seconds,
        output_path=output,
        rejects_path=rejects if rejects_written else None,
    )


def check_paths(
    input_path: str | Path, output_path: str | Path, rejects_path: str | Path | None = None
) -> tuple[Path, Path]:
    """Refuse a job whose files are wrong before any work (or model load): returns (output, rejects)."""
    source = input_file(input_path)
    output = output_file(output_path, source, what="output")
    rejects = (
        default_rejects_path(output) if rejects_path is None else output_file(rejects_path, source, what="rejects")
    )
    if rejects.resolve() == output.resolve():
        raise InvalidArgumentError(f"the rejects file and the output are both {output}; give --rejects another path")
    return output, rejects


def default_rejects_path(output: Path) -> Path:
    """``scores.parquet`` -> ``scores.rejects.parquet`` (``scores.csv`` -> ``scores.rejects.csv``), beside it."""
    return output.with_name(f"{output.stem}.rejects{output.suffix.lower()}")


# -- scoring ---------------------------------------------------------------------------------------


class _ChunkScorer:
    """Scores one chunk: the fast path first, and only for a failing chunk the search for its bad rows."""

    def __init__(self, model: LoadedModel, source: Source) -> None:
        self.model = model
        self.signature = model.signature
        self.path = source.path
        names = source.schema.names
        missing = [n for n in self.signature.names if n not in names]
        if missing:
            raise InvalidArgumentError(
                f"input file {source.path} lacks column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(repr(m) for m in missing)} that {model.ref} needs; it has {names}"
            )
        self.class_names = [f"{PROBABILITY_PREFIX}{c}" for c in model.classes] if model.classes is not None else []
        taken = [n for n in (PREDICTION_COLUMN, *self.class_names, *REJECT_COLUMNS) if n in names]
        if taken:
            raise InvalidArgumentError(
                f"input file {source.path} already has column{'s' if len(taken) > 1 else ''} {taken}, which batch "
                "scoring adds to its output or rejects; rename or drop them first"
            )
        self.specs = {spec.name: spec for spec in self.signature.features}
        self.input_schema = source.schema
        self.typed_schema = pa.schema([_typed_field(f, self.specs.get(f.name)) for f in source.schema])
        self.rejects_schema = pa.schema(
            [pa.field(n, pa.string()) for n in source.schema.names]
            + [pa.field("row", pa.int64()), pa.field("reason", pa.string())]
        )
        self._any_scored = False
        self._reasons: dict[tuple[str, str, str], str | None] = {}

    def score(self, chunk: pa.Table, *, offset: int) -> tuple[pa.Table | None, pa.Table | None]:
        """Scored rows with their outputs, and rejected rows with their reasons (None when there are none)."""
        typed, bad_text = self._typed(chunk)
        frame = typed.select(list(self.signature.names)).to_pandas()
        rejected = self._prescreen(frame, bad_text)
        candidates = np.setdiff1d(np.arange(len(frame)), [r for r, _ in rejected], assume_unique=True)
        pieces, failed, model_failure = self._predict(frame, candidates)
        if model_failure is not None and not pieces and not self._any_scored:
            # Not one row of the first chunk got a prediction: the model, not the data, is at fault.
            raise PredictionError(f"{self.model.ref} failed on every row of the first chunk: {model_failure}")
        rejected.extend(failed)
        scored = self._output(typed, pieces) if pieces else None
        self._any_scored = self._any_scored or bool(pieces)
        return scored, self._rejects(chunk, rejected, offset) if rejected else None

    def empty_output(self) -> pa.Table:
        """The output's shape when no row was scored (or the input had none), typed from the signature."""
        fields = [*self.typed_schema, pa.field(PREDICTION_COLUMN, _output_type(self.signature.output.dtype))]
        if self.signature.output.has_probabilities:
            fields.extend(pa.field(n, pa.float64()) for n in self.class_names)
        return pa.schema(fields).empty_table()

    def _typed(self, chunk: pa.Table) -> tuple[pa.Table, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """Parse text feature columns to the signature's types; unparseable cells are remembered, not raised."""
        columns: list[pa.ChunkedArray] = []
        bad_text: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for field, typed_field, column in zip(chunk.schema, self.typed_schema, chunk.columns, strict=True):
            if typed_field.type == field.type:
                columns.append(column)
                continue
            spec = self.specs[field.name]
            parsed, bad = _parse_text(column, spec)
            if bad.any():
                bad_text[field.name] = (bad, column.to_numpy(zero_copy_only=False))
            columns.append(parsed)
        return pa.Table.from_arrays(columns, schema=self.typed_schema), bad_text

    def _prescreen(
        self, frame: pd.DataFrame, bad_text: dict[str, tuple[np.ndarray, np.ndarray]]
    ) -> list[tuple[int, str]]:
        """Reject rows with nulls where not allowed or unparseable text, without a model call per row."""
        masks: list[tuple[FeatureSpec, np.ndarray, np.ndarray | None]] = []
        for spec in self.signature.features:
            if spec.name in bad_text:
                bad, texts = bad_text[spec.name]
                masks.append((spec, bad, texts))
            if not spec.nullable:
                nulls = frame[spec.name].isna().to_numpy()
                if spec.name in bad_text:
                    nulls = nulls & ~bad_text[spec.name][0]
                if nulls.any():
                    masks.append((spec, nulls, None))
        if not masks:
            return []
        flagged = np.flatnonzero(np.logical_or.reduce([m for _, m, _ in masks]))
        rejected: list[tuple[int, str]] = []
        for row in flagged:
            # The adapter reports the first failing feature in signature order; so do we.
            failing, _, cells = next(item for item in masks if item[1][row])
            text = None if cells is None else cells[row]
            reason = self._explain(frame, int(row), failing, text)
            if reason is None and text is not None:
                reason = f"feature {failing.name!r} has a value that cannot be read as {failing.type}: {text!r}"
            if reason is not None:  # else the adapter accepts the row after all, and it is scored
                rejected.append((int(row), reason))
        return rejected

    def _explain(self, frame: pd.DataFrame, row: int, spec: FeatureSpec, text: Any) -> str | None:
        """The adapter's own words for what is wrong with one row; one call per distinct problem."""
        key = (spec.name, "text" if text is not None else "null", "" if text is None else str(text))
        if key not in self._reasons:
            one = frame.iloc[[row]].copy()
            if text is not None:
                one[spec.name] = pd.Series([text], index=one.index, dtype=object)
            try:
                self.model.prepare(one)
                self._reasons[key] = None
            except SignatureError as exc:
                self._reasons[key] = _reason(exc)
        return self._reasons[key]

    def _predict(
        self, frame: pd.DataFrame, rows: np.ndarray
    ) -> tuple[list[tuple[np.ndarray, Prediction]], list[tuple[int, str]], str | None]:
        """Predict on ``rows``; a failing set is halved until each failure is pinned to one row."""
        pieces: list[tuple[np.ndarray, Prediction]] = []
        failed: list[tuple[int, str]] = []
        model_failure: str | None = None
        stack = [rows] if len(rows) else []
        while stack:
            part = stack.pop()
            data = frame if len(part) == len(frame) else frame.iloc[part]
            try:
                prediction = self.model.predict_batch(data)
            except (SignatureError, PredictionError) as exc:
                if len(part) == 1:
                    failed.append((int(part[0]), _reason(exc)))
                    if isinstance(exc, PredictionError) and model_failure is None:
                        model_failure = _reason(exc)
                else:
                    half = len(part) // 2
                    stack.extend((part[half:], part[:half]))  # left half is popped first: rows stay in order
                continue
            if len(prediction.predictions) != len(part):
                raise PredictionError(
                    f"{self.model.ref} returned {len(prediction.predictions)} predictions for {len(part)} rows"
                )
            pieces.append((part, prediction))
        return pieces, failed, model_failure

    def _output(self, typed: pa.Table, pieces: list[tuple[np.ndarray, Prediction]]) -> pa.Table:
        rows = np.concatenate([part for part, _ in pieces])
        predictions = np.concatenate([p.predictions for _, p in pieces])
        out = typed if len(rows) == typed.num_rows else typed.take(pa.array(rows))
        out = out.append_column(PREDICTION_COLUMN, _to_arrow(predictions))
        probabilities = [p.probabilities for _, p in pieces]
        if all(p is not None for p in probabilities):
            proba = np.concatenate([np.asarray(p, dtype=np.float64) for p in probabilities if p is not None])
            proba = proba.reshape(len(rows), -1)
            names = (
                self.class_names
                if len(self.class_names) == proba.shape[1]
                else [f"{PROBABILITY_PREFIX}{j}" for j in range(proba.shape[1])]
            )
            for j, name in enumerate(names):
                out = out.append_column(name, pa.array(proba[:, j]))
        return out

    def _rejects(self, chunk: pa.Table, rejected: list[tuple[int, str]], offset: int) -> pa.Table:
        rejected.sort()
        rows = np.asarray([r for r, _ in rejected], dtype=np.int64)
        picked = chunk.take(pa.array(rows))
        columns = [_as_text(column) for column in picked.columns]
        columns += [pa.array(rows + offset), pa.array([reason for _, reason in rejected], type=pa.string())]
        return pa.Table.from_arrays(columns, schema=self.rejects_schema)


def _typed_field(field: pa.Field, spec: FeatureSpec | None) -> pa.Field:
    """The output type of an input column: text features become the signature's numbers or booleans."""
    if spec is None or not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
        return field
    if spec.type.is_numeric:
        return pa.field(field.name, pa.float64())
    if spec.type is FeatureType.BOOLEAN:
        return pa.field(field.name, pa.bool_())
    return field


def _parse_text(column: pa.ChunkedArray, spec: FeatureSpec) -> tuple[pa.ChunkedArray | pa.Array, np.ndarray]:
    """Text to float64 or bool; returns the parsed column (bad cells null) and a mask of the bad cells."""
    if spec.type.is_numeric:
        try:
            parsed = pc.cast(column, pa.float64())
            return parsed, np.zeros(len(column), dtype=bool)
        except pa.ArrowInvalid:
            pass  # some cell is not a number: find which, cell by cell
        text = column.to_pandas()
        numbers = pd.to_numeric(text, errors="coerce")
        bad = (numbers.isna() & text.notna()).to_numpy()
        return pa.array(numbers.to_numpy(dtype=np.float64), from_pandas=True), bad
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(column))
    true = pc.is_in(lowered, pa.array(sorted(_TRUE))).to_numpy(zero_copy_only=False)
    false = pc.is_in(lowered, pa.array(sorted(_FALSE))).to_numpy(zero_copy_only=False)
    present = pc.is_valid(column).to_numpy(zero_copy_only=False)
    bad = present & ~true & ~false
    values = np.where(true, True, False)
    return pa.array(values, mask=~(true | false), type=pa.bool_()), bad


def _to_arrow(values: np.ndarray) -> pa.Array:
    """One prediction per row; a vector per row becomes a fixed-size list column."""
    if values.ndim > 1:
        flat = values.reshape(len(values), -1)
        return pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), flat.shape[1])
    if values.dtype.kind == "O":
        return pa.array(values.tolist())
    return pa.array(values)


def _output_type(dtype: str) -> pa.DataType:
    if dtype == "string":
        return pa.string()
    try:
        return pa.from_numpy_dtype(np.dtype(dtype))
    except (TypeError, pa.ArrowNotImplementedError):
        return pa.string()


def _as_text(column: pa.ChunkedArray) -> pa.Array:
    """Rejects keep every input column as text, so any input type fits one rejects schema."""
    try:
        return pc.cast(column, pa.string()).combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else str(v) for v in column.to_pylist()], type=pa.string())


def _reason(exc: ShipyardError) -> str:
    """The row is in the ``row`` column, so the adapter's 'row N: ' (N within a sub-batch) is dropped."""
    return _ROW_PREFIX.sub("", str(exc))
