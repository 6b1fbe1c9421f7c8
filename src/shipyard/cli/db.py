"""``shipyard db``: the control-plane store's schema."""

from __future__ import annotations

import typer

from shipyard.cli.context import console, state

app = typer.Typer(
    help="The control-plane store: its schema and migrations.\n\nExample: shipyard db upgrade",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("upgrade")
def upgrade() -> None:
    """Apply pending migrations (they also run on first use).

    Example: SHIPYARD_DATABASE_URL=postgresql://postgres@127.0.0.1/test shipyard db upgrade
    """
    from shipyard.store.db import Database, redact

    settings = state.local_settings()
    db = Database(settings.database_url, migrate=False)
    try:
        head = db.migrate()
    finally:
        db.dispose()
    console.print(f"store {redact(db.url)} is at schema revision {head}")
