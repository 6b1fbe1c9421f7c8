"""Feedback use cases: store labels and rewards durably, and export them joined with their predictions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.core.feedback import (
    FeedbackConflictError,
    FeedbackInput,
    Outcome,
    compare,
    conflict_message,
    parse_feedback,
)
from shipyard.core.identity import LOCAL_ACTOR, Actor
from shipyard.core.signature import OutputKind
from shipyard.errors import InvalidArgumentError, StoreError
from shipyard.services.audit import record
from shipyard.services.endpoints import EndpointService, endpoint_target
from shipyard.store import feedback as repo
from shipyard.store.prediction_log import META_COLUMNS, PredictionLog

ServedBy = Callable[[str], tuple[str, str] | None]
"""Looks up (version, arm) of a request id this process served recently, or None."""


class FeedbackService:
    def __init__(self, endpoints: EndpointService, log: PredictionLog, *, max_rows: int = 10_000) -> None:
        self.endpoints = endpoints
        self.registry = endpoints.registry
        self.db = endpoints.db
        self.log = log
        self.max_rows = max_rows

    def record(
        self,
        endpoint: str,
        body: Any,
        *,
        served_by: ServedBy | None = None,
        correction: bool = False,
        actor: Actor = LOCAL_ACTOR,
    ) -> dict[str, Any]:
        """Check every item against the endpoint's model, then store them all in one transaction, or none.

        An item whose value differs from the one stored for its request id and row is refused (409) unless it
        is a correction (``"correction": true``, or ``correction`` for the whole body, as ``PUT`` does); the
        check reads the stored rows in the writing transaction, so two concurrent posts cannot both pass it.
        Returns only after the transaction committed, so an acknowledged item survives a crash.

        A bulk import (an ``items`` body) or a body that corrected stored values is one audit event (counts, not
        the values); a single label is data flowing in, like a prediction, and is not.
        """
        stored = self.endpoints.get(endpoint)
        version = self.registry.get(stored.model)
        items = parse_feedback(body, version.signature.output, max_row=self.max_rows, correction=correction)
        now = self.registry.clock()
        rows = [self._item(endpoint, item, now, served_by) for item in items]
        with self.db.write() as conn:
            current = repo.claim(conn, rows, now)
            fills: list[repo.FeedbackItem] = []
            corrections: list[tuple[repo.FeedbackItem, repo.FeedbackItem]] = []
            conflicts: list[tuple[FeedbackInput, repo.FeedbackItem]] = []
            served: list[tuple[str, int, str, str]] = []
            for item, row in zip(items, rows, strict=True):
                old = current[(row.request_id, row.row)]
                outcome = compare(old.label, old.reward, item)
                if outcome is Outcome.CONFLICT:
                    conflicts.append((item, old))
                elif outcome is Outcome.CORRECTED:
                    corrections.append((old, row))
                elif outcome is Outcome.FILLED:
                    fills.append(row)
                if old.version is None and row.version is not None and row.arm is not None:
                    served.append((row.request_id, row.row, row.version, row.arm))
            if conflicts:  # raised inside the transaction: the items inserted above are rolled back too
                item, old = conflicts[0]
                message = conflict_message(endpoint, item, old.label, old.reward, len(conflicts) - 1)
                raise FeedbackConflictError(message)
            repo.fill(conn, fills)
            repo.correct(conn, corrections, now)
            repo.fill_served(conn, endpoint, served)
            bulk = isinstance(body, dict) and "items" in body
            if bulk or corrections:
                record(
                    conn,
                    actor,
                    "feedback.correct" if corrections else "feedback.import",
                    endpoint_target(endpoint),
                    after={
                        "items": len(rows),
                        "filled": len(fills),
                        "corrected": len(corrections),
                        "request_ids": len({row.request_id for row in rows}),
                    },
                    at=now,
                )
        return {"endpoint": endpoint, "accepted": len(rows), "corrected": len(corrections)}

    @staticmethod
    def _item(endpoint: str, item: FeedbackInput, now: datetime, served_by: ServedBy | None) -> repo.FeedbackItem:
        served = served_by(item.request_id) if served_by is not None else None
        return repo.FeedbackItem(
            endpoint=endpoint,
            request_id=item.request_id,
            observed_at=item.observed_at or now,
            row=item.row,
            version=served[0] if served else None,
            arm=served[1] if served else None,
            label=item.label,
            reward=item.reward,
        )

    def items(
        self, endpoint: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[repo.FeedbackItem]:
        self.endpoints.get(endpoint)
        with self.db.read() as conn:
            return repo.items(conn, endpoint, since=since, until=until)

    def history(self, endpoint: str, request_id: str | None = None) -> list[repo.Replaced]:
        """The values corrections replaced, with when each was observed and replaced, oldest first."""
        self.endpoints.get(endpoint)
        with self.db.read() as conn:
            return repo.history(conn, endpoint, request_id)

    def joined(self, endpoint: str, *, since: datetime | None = None, until: datetime | None = None) -> pa.Table:
        """Every feedback item (observed in the range) with its logged prediction's columns, empty when not logged.

        Shipyard's own columns start with an underscore in the log and here alike (``_request_id``, ``_row``,
        ``_label``, ``_version``, ``_prediction``, ...), so none can clash with a feature; features keep their
        names. The same join over files, in DuckDB (the log under ``$SHIPYARD_ARTIFACT_URI/prediction-log``,
        the feedback from ``shipyard feedback export``, whose ``_``-columns from the log are left out here)::

            SELECT p.*, f._label, f._reward, f._observed_at, f._corrections
            FROM read_parquet('.shipyard/artifacts/prediction-log/endpoint=fraud/*/*.parquet',
                              union_by_name = true) AS p
            JOIN read_parquet('fraud-feedback.parquet') AS f USING (_request_id, _row)
        """
        feedback = feedback_table(self.items(endpoint, since=since, until=until))
        # With no feedback in the range there is nothing to join: the log (every served row so far) is not read,
        # which a monitoring report built every few seconds for /metrics and alerts would otherwise do each time.
        files = self.log.files(endpoint) if feedback.num_rows else []
        if not files:  # nothing logged (sample rate 0, or no traffic yet) or no feedback: the same columns, empty
            present = set(feedback.column_names)
            for name in self._log_columns(endpoint):
                if name not in present:
                    feedback = feedback.append_column(name, pa.nulls(feedback.num_rows))
            return feedback
        import duckdb

        connection = duckdb.connect()
        try:
            if self.log.filesystem is not None:
                connection.register_filesystem(self.log.filesystem)
            connection.register("feedback", feedback)
            connection.execute(
                "CREATE TABLE log AS SELECT * FROM read_parquet(?, union_by_name = true) "
                "WHERE _request_id IN (SELECT _request_id FROM feedback)",
                [files],
            )
            return connection.sql(
                """
                SELECT f.*, p.* EXCLUDE (_request_id, _row)
                FROM feedback f
                LEFT JOIN (SELECT * FROM log QUALIFY row_number() OVER (PARTITION BY _request_id, _row) = 1) p
                  ON p._request_id = f._request_id AND p._row = f._row
                ORDER BY f._observed_at, f._request_id, f._row
                """
            ).to_arrow_table()
        except duckdb.Error as exc:
            raise StoreError(f"cannot join feedback with the prediction log of {endpoint!r}: {exc}") from exc
        finally:
            connection.close()

    def fill_from_log(self, endpoint: str, *, since: datetime) -> int:
        """Give feedback that arrived before (or away from) its prediction the version and arm from the log.

        An A/B test counts rewards per arm; feedback posted to another worker or replica than the one that
        served the prediction only learns its arm here. Returns how many items were filled in.
        """
        with self.db.read() as conn:
            missing = repo.unserved(conn, endpoint, since)
        files = self.log.files(endpoint, since=since) if missing else []
        if not files:
            return 0
        import duckdb

        wanted = pa.table(
            {
                "request_id": pa.array([m[0] for m in missing], pa.string()),
                "row": pa.array([m[1] for m in missing], pa.int32()),
            }
        )
        connection = duckdb.connect()
        try:
            if self.log.filesystem is not None:
                connection.register_filesystem(self.log.filesystem)
            connection.register("wanted", wanted)
            found = connection.sql(
                """
                SELECT w.request_id, w.row, any_value(p._version), any_value(p._arm)
                FROM wanted w
                JOIN read_parquet(?, union_by_name = true) p ON p._request_id = w.request_id AND p._row = w.row
                GROUP BY w.request_id, w.row
                """,
                params=[files],
            ).fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"cannot read the prediction log of {endpoint!r}: {exc}") from exc
        finally:
            connection.close()
        if found:
            with self.db.write() as conn:
                repo.fill_served(conn, endpoint, [(str(r[0]), int(r[1]), str(r[2]), str(r[3])) for r in found])
        return len(found)

    def _log_columns(self, endpoint: str) -> list[str]:
        """The prediction log's columns for the endpoint's current model, as a join would add them."""
        signature = self.registry.get(self.endpoints.get(endpoint).model).signature
        names = [c for c in META_COLUMNS if c not in ("_request_id", "_row")] + [*signature.names, "_prediction"]
        if signature.output.kind is OutputKind.CLASSIFICATION:
            names.append("_probabilities")
        return names

    def export(self, endpoint: str, out: Path) -> int:
        """Write predictions joined with their feedback to Parquet, ready for retraining; returns the rows."""
        if out.suffix.lower() != ".parquet":
            raise InvalidArgumentError(f"export writes Parquet; name the output *.parquet, not {out.name!r}")
        table = self.joined(endpoint)
        out.parent.mkdir(parents=True, exist_ok=True)
        temporary = out.with_name(f".{out.name}.tmp")
        pq.write_table(table, temporary)
        temporary.replace(out)
        return table.num_rows


FEEDBACK_COLUMNS = (
    "_request_id",
    "_row",
    "_label",
    "_reward",
    "_observed_at",
    "_served_version",
    "_served_arm",
    "_corrections",
)
"""The feedback side of an export, named like the prediction log's own columns (leading underscore)."""


def feedback_table(items: list[repo.FeedbackItem]) -> pa.Table:
    """Feedback items as Arrow columns (``FEEDBACK_COLUMNS``); labels keep their type where they share one."""
    labels = [i.label for i in items]
    try:
        label_array = pa.array(labels)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        label_array = pa.array([None if v is None else str(v) for v in labels], pa.string())
    if label_array.type == pa.null():
        label_array = pa.array(labels, pa.string())
    columns = [
        pa.array([i.request_id for i in items], pa.string()),
        pa.array([i.row for i in items], pa.int32()),
        label_array,
        pa.array([i.reward for i in items], pa.float64()),
        pa.array([i.observed_at for i in items], pa.timestamp("us", tz="UTC")),
        pa.array([i.version for i in items], pa.string()),
        pa.array([i.arm for i in items], pa.string()),
        pa.array([i.corrections for i in items], pa.int32()),
    ]
    return pa.table(dict(zip(FEEDBACK_COLUMNS, columns, strict=True)))
