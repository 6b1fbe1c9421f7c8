"""Table definitions; the Alembic migrations in ``migrations/versions`` create exactly these."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Json = sa.JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored as UTC on every database and read back aware (UTC).

    SQLite has no time zone type: SQLAlchemy writes an aware value's wall-clock time and drops its offset,
    so ``10:00+02:00`` would come back as ``10:00Z``. Converting to UTC before writing gives SQLite and
    PostgreSQL the same instant; a naive value is taken to be UTC already (the store's own clock is UTC).
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None or not isinstance(value, datetime):
            return value
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC) if dialect.name == "postgresql" else value
        utc = value.astimezone(UTC)
        return utc if dialect.name == "postgresql" else utc.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Timestamp = UtcDateTime()

models = sa.Table(
    "models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    # The per-model counter that numbers versions: incremented under a row lock, so no gaps or duplicates.
    sa.Column("latest_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    # How the model is retrained (``shipyard models set-trainer``): a ``module:function`` callable or a command.
    sa.Column("trainer", Json, nullable=True),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("flavor", sa.String(32), nullable=False),
    sa.Column("flavor_options", Json, nullable=False),
    sa.Column("signature", Json, nullable=False),
    sa.Column("reference_profile", Json, nullable=True),
    sa.Column("input_example", Json, nullable=True),
    sa.Column("training_data_hash", sa.String(64), nullable=True),
    sa.Column("hyperparameters", Json, nullable=False),
    sa.Column("code_commit", sa.String(64), nullable=True),
    sa.Column("code_dirty", sa.Boolean, nullable=True),
    sa.Column("code_repository", sa.Text, nullable=True),
    sa.Column("metrics", Json, nullable=False),
    sa.Column("tags", Json, nullable=False),
    sa.Column("notes", sa.Text, nullable=False, server_default=""),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("parent_version", sa.Integer, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    # Set only by a caller who passed trusted=True at registration: loading this version may run code
    # (a pickle, a pyfunc's source, skops types outside the reviewed allow-list), and servers load it only then.
    sa.Column("trusted", sa.Boolean, nullable=False, server_default=sa.false()),
    # Fitted at registration from labelled training data: maps top-label confidence to the accuracy seen
    # there, so the label-free estimate is calibrated (``core.performance.ConfidenceCalibrator.to_dict``).
    sa.Column("confidence_calibrator", Json, nullable=True),
    # Who did what, for the four-eyes rule and the card: the principal that registered the version, the one
    # that approved it (never the same when four-eyes is on) and why, and who vouched for code it runs.
    sa.Column("registered_by", sa.String(160), nullable=True),
    sa.Column("approved_by", sa.String(160), nullable=True),
    sa.Column("approved_at", Timestamp, nullable=True),
    sa.Column("approval_reason", sa.Text, nullable=True),
    sa.Column("vouched_by", sa.String(160), nullable=True),
    # Fitted at registration on training data (JSON, no pickle): the loss model behind a regressor's label-free
    # error estimate (DLE) and the novelty model that scores served rows as outliers. Null when not fitted.
    sa.Column("loss_model", Json, nullable=True),
    sa.Column("outlier_model", Json, nullable=True),
    sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    # A pinned version (fraud:3) or an alias the endpoint follows (fraud@champion).
    sa.Column("model_ref", sa.String(256), nullable=False),
    sa.Column("strict", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    # Serve, alias or roll out only approved versions on this endpoint (409 naming the rule otherwise).
    sa.Column("require_approval", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("require_validation", sa.Boolean, nullable=False, server_default=sa.false()),
    # The loop policy (core.loop.LoopPolicy) and the run awaiting approval, if any; null: no policy.
    sa.Column("loop", Json, nullable=True),
)

rollouts = sa.Table(
    "rollouts",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("endpoint", sa.String(128), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    # The whole RolloutState as JSON: the pure core owns its shape; the store keeps it whole.
    sa.Column("state", Json, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# One row per endpoint with a rollout in progress: the primary key makes a second start a conflict.
active_rollouts = sa.Table(
    "active_rollouts",
    metadata,
    sa.Column("endpoint", sa.String(128), primary_key=True),
    sa.Column("rollout_id", sa.String(32), sa.ForeignKey("rollouts.id", ondelete="CASCADE"), nullable=False),
)

rollout_events = sa.Table(
    "rollout_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "rollout_id", sa.String(32), sa.ForeignKey("rollouts.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("evidence", Json, nullable=False),
)

# Each serving worker upserts its own running totals per rollout step and arm; readers merge the rows.
rollout_evidence = sa.Table(
    "rollout_evidence",
    metadata,
    sa.Column("rollout_id", sa.String(32), sa.ForeignKey("rollouts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("step", sa.Integer, primary_key=True),
    sa.Column("arm", sa.String(16), primary_key=True),
    sa.Column("worker", sa.String(64), primary_key=True),
    sa.Column("evidence", Json, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
)

# Labels and rewards joined to predictions by request id and row; re-sending the same item is idempotent.
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("endpoint", sa.String(128), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("row", sa.Integer, nullable=False, server_default="0"),
    sa.Column("version", sa.String(160), nullable=True),
    sa.Column("arm", sa.String(16), nullable=True),
    # None is SQL NULL (not JSON null), so a later reward for the same prediction keeps its label.
    sa.Column("label", sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql"), nullable=True),
    sa.Column("reward", sa.Float, nullable=True),
    sa.Column("observed_at", Timestamp, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    # How many times an explicit correction replaced this item's label or reward (history in feedback_history).
    sa.Column("corrections", sa.Integer, nullable=False, server_default="0"),
    sa.UniqueConstraint("endpoint", "request_id", "row", name="uq_feedback_endpoint_request_row"),
    sa.Index("ix_feedback_endpoint_observed_at", "endpoint", "observed_at"),
)

# The values a correction replaced, with when they had been observed and when they were replaced.
feedback_history = sa.Table(
    "feedback_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("endpoint", sa.String(128), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("row", sa.Integer, nullable=False),
    sa.Column("label", sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql"), nullable=True),
    sa.Column("reward", sa.Float, nullable=True),
    sa.Column("observed_at", Timestamp, nullable=False),
    sa.Column("replaced_at", Timestamp, nullable=False),
    sa.Index("ix_feedback_history_endpoint_request", "endpoint", "request_id"),
)

# Events to announce (rollout transitions, ...), written in the same transaction as the change they report,
# so an event exists exactly when its change committed, whichever process (a shell, a server) made it.
# The process holding the controller lease delivers them to its configured receivers.
webhook_outbox = sa.Table(
    "webhook_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("endpoint", sa.String(128), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False, index=True),
)

# One row per receiver (keyed by a hash of its URL, so no credential is stored): how far it has been
# delivered, and its retry state, so a dead receiver delays only itself.
webhook_receivers = sa.Table(
    "webhook_receivers",
    metadata,
    sa.Column("receiver", sa.String(64), primary_key=True),
    sa.Column("last_id", sa.Integer, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Timestamp, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("delivered", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# Live profiles: each serving worker upserts its running profile per endpoint, version and window; readers
# merge the workers' rows (and any window range) by adding counts.
monitor_windows = sa.Table(
    "monitor_windows",
    metadata,
    sa.Column("endpoint", sa.String(128), primary_key=True),
    sa.Column("version", sa.String(160), primary_key=True),
    sa.Column("window_start", Timestamp, primary_key=True),
    sa.Column("worker", sa.String(64), primary_key=True),
    sa.Column("window_seconds", sa.Integer, nullable=False),
    sa.Column("profile", Json, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Index("ix_monitor_windows_endpoint_start", "endpoint", "window_start"),
)

# API keys: the secret is shown once at creation; only a per-key salt and SHA-256 of salt + secret are kept.
# ``key_id`` is the public part of the key (``shy_<key_id>_<secret>``), so a lookup never scans hashes.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("endpoints", Json, nullable=True),
    sa.Column("models", Json, nullable=True),
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_by", sa.String(160), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=True),
    sa.Column("revoked_at", Timestamp, nullable=True),
)

# The audit trail: one row per mutating action, written in the same transaction as the change. Each row
# stores the previous row's hash and its own (SHA-256 over its fields and that link), so an edited, deleted
# or reordered row breaks the chain at a point ``shipyard audit verify`` names.
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("actor", sa.String(160), nullable=False),
    sa.Column("address", sa.String(64), nullable=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(256), nullable=False),
    sa.Column("before", Json, nullable=True),
    sa.Column("after", Json, nullable=True),
    sa.Column("request_id", sa.String(128), nullable=True),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_events_target", "target"),
)

# Validation runs (``shipyard validate``): the candidate's figures on a holdout, the champion's beside them and
# the gates' verdict; the latest passing run is the evidence approvals and rollouts can require.
validations = sa.Table(
    "validations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("champion", sa.String(160), nullable=True),
    sa.Column("result", Json, nullable=False),
    sa.Column("created_by", sa.String(160), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index("ix_validations_model_version", "model", "version"),
)

# Retraining (and later other) jobs: stored so they survive a restart (a queued job runs, a running job whose
# worker died is marked failed with its log), one running at a time per model.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("endpoint", sa.String(128), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("engine", sa.String(32), nullable=False),
    sa.Column("params", Json, nullable=False),
    sa.Column("cause", Json, nullable=True),
    sa.Column("result", Json, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("log", sa.Text, nullable=False, server_default=""),
    sa.Column("worker", sa.String(128), nullable=True),
    sa.Column("created_by", sa.String(160), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("started_at", Timestamp, nullable=True),
    sa.Column("finished_at", Timestamp, nullable=True),
    # Renewed by the worker while the job runs: a running job whose worker stopped renewing it is dead.
    sa.Column("heartbeat_at", Timestamp, nullable=True),
    sa.Index("ix_jobs_model_state", "model", "state"),
)

# Alert rules (``shipyard alerts create`` or declared in shipyard.toml/YAML, ``source`` says which), evaluated
# by the controller lease holder from stored windows: one state row per rule and group (endpoint, version,
# feature), every transition in the history, silences by rule (and optional label matchers).
alert_rules = sa.Table(
    "alert_rules",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("spec", Json, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("created_by", sa.String(160), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

alert_states = sa.Table(
    "alert_states",
    metadata,
    sa.Column("rule", sa.String(128), primary_key=True),
    sa.Column("group_key", sa.String(256), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("labels", Json, nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("held", sa.Integer, nullable=False, server_default="0"),
    sa.Column("since", Timestamp, nullable=False),
    sa.Column("evaluated_at", Timestamp, nullable=False),
    sa.Column("fired_at", Timestamp, nullable=True),
    sa.Column("resolved_at", Timestamp, nullable=True),
    # The start of the last stored window evaluated: consecutive windows count toward ``for``, a restart
    # resumes after it. ``notified``: a firing notification went out (de-duplication, silences).
    sa.Column("window_start", Timestamp, nullable=True),
    sa.Column("notified", sa.Boolean, nullable=False, server_default=sa.false()),
    # The rule's action for this firing: waiting (for an ack), done or failed, and what it did or why not.
    sa.Column("action_state", sa.String(16), nullable=True),
    sa.Column("action_detail", Json, nullable=True),
)

alert_history = sa.Table(
    "alert_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rule", sa.String(128), nullable=False),
    sa.Column("group_key", sa.String(256), nullable=False),
    sa.Column("from_state", sa.String(16), nullable=False),
    sa.Column("to_state", sa.String(16), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("detail", Json, nullable=True),
    sa.Column("at", Timestamp, nullable=False),
    sa.Index("ix_alert_history_rule", "rule"),
)

alert_silences = sa.Table(
    "alert_silences",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rule", sa.String(128), nullable=False),
    sa.Column("matchers", Json, nullable=True),
    sa.Column("starts_at", Timestamp, nullable=False),
    sa.Column("ends_at", Timestamp, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(160), nullable=False),
    sa.Column("expired_at", Timestamp, nullable=True),
)

# Where alert notifications go (webhook with an HMAC signature, Slack-compatible webhook, SMTP email,
# Prometheus Alertmanager); secrets in ``config`` are referenced by environment variable name, not stored.
notification_channels = sa.Table(
    "notification_channels",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("config", Json, nullable=False),
    sa.Column("created_by", sa.String(160), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)
