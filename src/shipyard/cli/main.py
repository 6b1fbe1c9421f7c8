"""The ``shipyard`` command. Errors are one readable line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import sys
import traceback

import typer

from shipyard.cli import batch as batch_commands
from shipyard.cli import db as db_commands
from shipyard.cli import demo as demo_commands
from shipyard.cli import endpoints as endpoint_commands
from shipyard.cli import models as model_commands
from shipyard.cli import monitor as monitor_commands
from shipyard.cli import predict as predict_commands
from shipyard.cli import rollout as rollout_commands
from shipyard.cli import serve as serve_commands
from shipyard.errors import ShipyardError

app = typer.Typer(
    name="shipyard",
    help="Take trained models to production and keep them healthy there.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(model_commands.app, name="models")
app.add_typer(endpoint_commands.app, name="endpoints")
app.add_typer(db_commands.app, name="db")
app.add_typer(rollout_commands.app, name="rollout")
app.add_typer(monitor_commands.feedback_app, name="feedback")
app.command("serve")(serve_commands.serve)
app.command("predict")(predict_commands.predict)
app.command("batch")(batch_commands.batch)
app.command("demo")(demo_commands.demo)
app.command("monitor")(monitor_commands.monitor)
app.command("report")(monitor_commands.report)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command and turn any error into one line on stderr."""
    try:
        app(args=argv, prog_name="shipyard")
    except ShipyardError as exc:
        _fail(f"error: {exc}", 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:  # a bug: say so in one line, keep the traceback for whoever asks
        if os.environ.get("SHIPYARD_DEBUG"):
            traceback.print_exc()
        _fail(f"internal error: {type(exc).__name__}: {exc} (set SHIPYARD_DEBUG=1 for the traceback)", 70)


def _fail(message: str, code: int) -> None:
    sys.stderr.write(" ".join(message.split()) + "\n")
    sys.exit(code)


if __name__ == "__main__":
    main()
