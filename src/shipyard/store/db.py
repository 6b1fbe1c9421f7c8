"""Engine set-up for SQLite (WAL) and PostgreSQL, read/write transactions, and migrations.

SQLite serialises writers: a write transaction starts with ``BEGIN IMMEDIATE`` so two processes
never both read a counter and then race to write it, and readers keep going under WAL. PostgreSQL
gets the same guarantee from row locks taken by the statements themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from shipyard.errors import ConfigError, StoreError, missing_dependency

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant shared by every Shipyard process; it keys the advisory lock that serialises migrations.
_MIGRATION_LOCK_KEY = 7_203_311_405


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (``postgres://``, ``postgresql://``) and pick the psycopg driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redact(url: str) -> str:
    """The URL with any password hidden, for messages and logs: in the user part and in a ``password=`` query."""
    url = re.sub(r"://([^:/@]*):[^?#]*@", r"://\1:***@", url)  # to the last @: a password may hold one
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", url)


class Database:
    """One engine per process; repositories receive a Connection from ``read()`` or ``write()``."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = normalise_url(url)
        self.engine = _create_engine(self.url)
        self.dialect = self.engine.dialect.name
        if migrate:
            self.migrate()

    def __repr__(self) -> str:
        return f"Database({redact(self.url)!r})"

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._translated(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that holds the write lock from its first statement (SQLite) until commit."""
        with self._translated(), self.engine.connect() as conn:
            conn.execution_options(shipyard_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise StoreError(f"the control-plane store at {redact(self.url)} failed: {self._reason(exc)}") from exc

    def _reason(self, exc: SQLAlchemyError) -> str:
        """The driver's first line, with this store's password masked should the driver ever echo it."""
        password = self.engine.url.password
        reason = _reason(exc)
        return reason.replace(str(password), "***") if password else reason

    def migrate(self) -> str:
        """Bring the schema to the newest revision; concurrent callers wait for one another."""
        head = head_revision()
        try:
            with self.engine.connect() as conn:
                current = _current_revision(conn)
                conn.rollback()
                if current == head:
                    return head  # the common case: no Alembic import, one small query
                conn.execution_options(shipyard_write=True)
                with conn.begin():
                    if self.dialect == "postgresql":
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
                    self._upgrade(conn)
        except OperationalError as exc:
            reason = self._reason(exc)
            raise StoreError(f"cannot reach the control-plane store at {redact(self.url)}: {reason}") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"migrating the store at {redact(self.url)} failed: {self._reason(exc)}") from exc
        return head

    def _upgrade(self, conn: Connection) -> None:
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        known = {rev.revision for rev in ScriptDirectory.from_config(config).walk_revisions()}
        current = MigrationContext.configure(conn).get_current_revision()
        _check_known(current, known, self.url)
        if current != head_revision():
            config.attributes["connection"] = conn
            command.upgrade(config, "head")


def head_revision() -> str:
    """The newest migration, read from the migration files (the one no other revises)."""
    revisions: dict[str, str | None] = {}
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text = path.read_text()
        revision = re.search(r'^revision = "([^"]+)"', text, re.M)
        down = re.search(r'^down_revision = (?:"([^"]+)"|None)', text, re.M)
        if revision and down:
            revisions[revision.group(1)] = down.group(1)
    heads = set(revisions) - {d for d in revisions.values() if d}
    if len(heads) != 1:
        raise StoreError(f"the migrations in {MIGRATIONS_DIR} have {len(heads)} heads; expected one")
    return heads.pop()


def _current_revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


def _check_known(current: str | None, known: set[str], url: str) -> None:
    if current is not None and current not in known:
        raise StoreError(
            f"the store at {redact(url)} is at schema revision {current!r}, which this Shipyard does not "
            "know; it was migrated by a newer Shipyard: upgrade shipyard"
        )


def _reason(exc: SQLAlchemyError) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _create_engine(url: str) -> Engine:
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"SHIPYARD_DATABASE_URL {redact(url)!r} is not a database URL: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        try:
            engine = sa.create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)
        except ModuleNotFoundError:
            raise missing_dependency("psycopg", "postgres", "a PostgreSQL store") from None
        return engine
    raise ConfigError(f"SHIPYARD_DATABASE_URL {redact(url)!r} is not supported: use sqlite:///path or postgresql://...")


def _sqlite_engine(parsed: sa.engine.URL) -> Engine:
    database = parsed.database
    if not database or database == ":memory:":
        raise ConfigError("an in-memory SQLite store cannot be shared between processes; give a file path")
    path = Path(database).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the directory for the SQLite store {path}: {exc.strerror}") from exc
    engine = sa.create_engine(parsed.set(database=str(path)), connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN is ours (see the module docstring).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get("shipyard_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine
