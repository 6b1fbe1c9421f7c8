"""The prediction log: append-only Parquet files in the artifact store, queried with DuckDB.

Layout: ``{artifact_uri}/prediction-log/endpoint={name}/date={YYYY-MM-DD}/part-{ms}-{worker}-{seq}.parquet``.
Each flush of a serving worker writes whole new files (a local file appears by rename, an S3 object
appears whole at completion), so readers never see a half-written file and writers never coordinate.
Files of one endpoint can differ in columns (versions with other features); reads union them by name.
"""

from __future__ import annotations

import io
import os
import re
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.errors import ConfigError, StoreError, missing_dependency

LOG_DIR = "prediction-log"
META_COLUMNS = ("_request_id", "_row", "_endpoint", "_version", "_arm", "_served_at", "_latency_ms")
"""Columns every log file has; features keep their own names, outputs are ``_prediction``/``_probabilities``."""
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "snappy",
    "use_dictionary": ["_endpoint", "_version", "_arm"],
    "write_statistics": ["_served_at"],
}
"""Writing is on the serving worker's CPU: dictionaries and min/max statistics only where they pay (time
filters skip whole files by ``_served_at``); this keeps a flush of a few thousand rows to a few ms."""
_PART = re.compile(r"^part-.*\.parquet$")


class PredictionLog:
    """Writes and reads one store's prediction log; safe to share between threads."""

    def __init__(self, artifact_uri: str, *, s3_endpoint_url: str | None = None, worker: str | None = None) -> None:
        scheme = artifact_uri.split("://", 1)[0].lower() if "://" in artifact_uri else "file"
        self.worker = worker or uuid.uuid4().hex[:12]
        self._seq = 0
        self._lock = threading.Lock()
        self._fs: Any = None
        if scheme == "file":
            self.root = str(Path(artifact_uri.removeprefix("file://")).expanduser() / LOG_DIR)
        elif scheme == "s3":
            try:
                import s3fs
            except ImportError:
                raise missing_dependency("s3fs", "s3", f"prediction log in {artifact_uri}") from None
            options: dict[str, Any] = {"use_listings_cache": False}
            if s3_endpoint_url:
                options["client_kwargs"] = {"endpoint_url": s3_endpoint_url}
            self._fs = s3fs.S3FileSystem(**options)
            self.root = f"{artifact_uri.rstrip('/')}/{LOG_DIR}"
        else:
            raise ConfigError(f"prediction log store {artifact_uri!r} is not supported: use a local path or s3://")

    @property
    def filesystem(self) -> Any:
        """The fsspec filesystem for remote logs (DuckDB reads through it); None for local files."""
        return self._fs

    # -- writing -----------------------------------------------------------------------------

    def write(self, endpoint: str, day: date, table: pa.Table) -> str:
        """Write one new file for ``endpoint`` and ``day``; returns its path."""
        with self._lock:
            self._seq += 1
            seq = self._seq
        name = f"part-{int(datetime.now(UTC).timestamp() * 1000)}-{self.worker}-{seq:06d}.parquet"
        directory = f"{self.root}/endpoint={endpoint}/date={day.isoformat()}"
        path = f"{directory}/{name}"
        try:
            if self._fs is None:
                os.makedirs(directory, exist_ok=True)
                temporary = f"{directory}/.{name}.tmp"
                pq.write_table(table, temporary, **PARQUET_OPTIONS)
                os.replace(temporary, path)
            else:
                buffer = io.BytesIO()
                pq.write_table(table, buffer, **PARQUET_OPTIONS)
                self._fs.pipe_file(path.removeprefix("s3://"), buffer.getvalue())
        except OSError as exc:
            raise StoreError(f"cannot write the prediction log file {path}: {exc}") from exc
        return path

    # -- reading -----------------------------------------------------------------------------

    def files(self, endpoint: str, *, since: datetime | None = None, until: datetime | None = None) -> list[str]:
        """The endpoint's log files for the days overlapping [since, until)."""
        base = f"{self.root}/endpoint={endpoint}"
        days = self._list(base)
        first = since.astimezone(UTC).date() if since is not None else None
        last = until.astimezone(UTC).date() if until is not None else None
        found: list[str] = []
        for entry in sorted(days):
            day = _day_of(entry)
            if day is None or (first is not None and day < first) or (last is not None and day > last):
                continue
            found.extend(f"{base}/{entry}/{f}" for f in sorted(self._list(f"{base}/{entry}")) if _PART.match(f))
        return found

    def _list(self, directory: str) -> list[str]:
        try:
            if self._fs is None:
                return os.listdir(directory)
            return [
                p.rstrip("/").rsplit("/", 1)[-1] for p in self._fs.ls(directory.removeprefix("s3://"), detail=False)
            ]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"cannot list the prediction log at {directory}: {exc}") from exc

    def query(
        self,
        endpoint: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        columns: Sequence[str] | None = None,
        where: str = "",
        parameters: Sequence[Any] = (),
    ) -> pa.Table:
        """Rows of the endpoint's log served in [since, until) as an Arrow table (columns unioned by name)."""
        files = self.files(endpoint, since=since, until=until)
        if not files:
            return pa.table({name: pa.array([], pa.string()) for name in (columns or META_COLUMNS)})
        import duckdb

        connection = duckdb.connect()
        try:
            if self._fs is not None:
                connection.register_filesystem(self._fs)
            selected = ", ".join(_quote(c) for c in columns) if columns else "*"
            clauses, values = [], list(parameters)
            if since is not None:
                clauses.append("_served_at >= ?")
                values.append(since)
            if until is not None:
                clauses.append("_served_at < ?")
                values.append(until)
            if where:
                clauses.append(f"({where})")
            condition = f" WHERE {' AND '.join(clauses)}" if clauses else ""
            sql = f"SELECT {selected} FROM read_parquet(?, union_by_name = true){condition}"
            return connection.sql(sql, params=[files, *values]).to_arrow_table()
        except duckdb.Error as exc:
            raise StoreError(f"cannot read the prediction log of endpoint {endpoint!r}: {exc}") from exc
        finally:
            connection.close()

    def count(self, endpoint: str) -> int:
        table = self.query(endpoint, columns=["_request_id"])
        return table.num_rows


def _day_of(entry: str) -> date | None:
    if not entry.startswith("date="):
        return None
    try:
        return date.fromisoformat(entry.removeprefix("date="))
    except ValueError:
        return None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
