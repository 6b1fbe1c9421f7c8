"""The ``shipyard`` command. Errors are one readable line and a non-zero exit, never a traceback.

Start-up is kept short: this module imports Typer and nothing of the registry, the server or their
libraries; each command's module is imported when that command runs (see ``cli.lazy``), and the
commands import what they need inside their functions.
"""

from __future__ import annotations

import gc
import os
import sys
import traceback
from typing import Annotated

import typer

from shipyard.cli.lazy import LazyCommand, lazy_group
from shipyard.errors import ShipyardError

try:  # Typer ships its own copy of Click from 0.2x on; before that it used Click's
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older Typer
    from click.exceptions import UsageError  # type: ignore[no-redef,assignment,unused-ignore]

# Exit status of a usage error (unknown option, missing argument, bad value), as Click and POSIX tools use.
USAGE_EXIT = 2

# In the order `shipyard --help` lists them: the lifecycle, register to monitor, then housekeeping.
COMMANDS: dict[str, LazyCommand] = {
    "demo": LazyCommand("shipyard.cli.demo:demo", "Train, register and serve a model on the iris data."),
    "models": LazyCommand("shipyard.cli.models:app", "The model registry: versions, aliases and model cards."),
    "endpoints": LazyCommand("shipyard.cli.endpoints:app", "Endpoints: named serving addresses."),
    "serve": LazyCommand("shipyard.cli.serve:serve", "Serve every endpoint (REST and Open Inference Protocol)."),
    "predict": LazyCommand("shipyard.cli.predict:predict", "Predict with an endpoint's model; prints JSON."),
    "batch": LazyCommand("shipyard.cli.batch:batch", "Score a CSV or Parquet file into CSV or Parquet."),
    "rollout": LazyCommand("shipyard.cli.rollout:app", "Rollouts: move an endpoint's traffic to a new version."),
    "monitor": LazyCommand("shipyard.cli.monitor:monitor", "Drift, data quality, performance and service figures."),
    "report": LazyCommand("shipyard.cli.monitor:report", "Write a self-contained HTML monitoring report."),
    "drift": LazyCommand("shipyard.cli.drift:drift", "Compare two datasets offline: drift, quality, performance."),
    "validate": LazyCommand("shipyard.cli.validate:validate", "Validation gates for CI: a candidate on a holdout."),
    "feedback": LazyCommand("shipyard.cli.monitor:feedback_app", "Feedback joined with predictions: export it."),
    "retrain": LazyCommand("shipyard.cli.jobs:retrain", "Retrain an endpoint's model on its feedback; register it."),
    "jobs": LazyCommand("shipyard.cli.jobs:app", "Retraining jobs: list, show, logs, cancel."),
    "alerts": LazyCommand("shipyard.cli.alerts:app", "Alert rules: create, apply, list, silence, ack, test."),
    "loop": LazyCommand("shipyard.cli.loop:app", "An endpoint's loop policy after retraining: manual, validate, auto."),
    "channels": LazyCommand("shipyard.cli.channels:app", "Notification channels: webhook, Slack, email, Alertmanager."),
    "keys": LazyCommand("shipyard.cli.keys:app", "API keys: who may call the server, with which role."),
    "audit": LazyCommand("shipyard.cli.audit:app", "The audit trail: who changed what; verify its hash chain."),
    "trace": LazyCommand("shipyard.cli.trace:trace", "Trace a request: version, artifact, data, code, feedback."),
    "db": LazyCommand("shipyard.cli.db:app", "The control-plane store: apply schema migrations."),
    "gc": LazyCommand("shipyard.cli.gc:gc", "List stored files no version needs; --apply deletes them."),
}

app = typer.Typer(
    name="shipyard",
    cls=lazy_group(COMMANDS),
    help=(
        "Take trained models to production and keep them healthy there.\n\n"
        "Example: shipyard demo (then: shipyard models list; shipyard serve --port 8000)"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: Rich's help renderer alone costs a quarter of a second of imports
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from shipyard.version import __version__  # package metadata is read only when asked for

        sys.stdout.write(f"shipyard {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_print_version),
    ] = False,
) -> None:
    """Take trained models to production and keep them healthy there."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command and turn any error into one line on stderr."""
    # A command's first moments are imports: hundreds of thousands of objects that live until exit, which
    # the collector would walk again every 700 allocations. A larger first generation still collects
    # cyclic garbage (a long batch job's included), just less often: about a tenth off `models list`.
    gc.set_threshold(50_000, 20, 100)
    try:
        code = app(args=argv, prog_name="shipyard", standalone_mode=False)
    except UsageError as exc:
        _usage_error(exc)
    except ShipyardError as exc:
        _fail(f"error: {exc}", 1)
    except (KeyboardInterrupt, typer.Abort):
        _fail("interrupted", 130)
    except Exception as exc:  # a bug: say so in one line, keep the traceback for whoever asks
        if os.environ.get("SHIPYARD_DEBUG"):
            traceback.print_exc()
        _fail(f"internal error: {type(exc).__name__}: {exc} (set SHIPYARD_DEBUG=1 for the traceback)", 70)
    sys.exit(code if isinstance(code, int) else 0)


def _usage_error(exc: UsageError) -> None:
    """Click's usage box becomes one line naming the problem and the help to read."""
    ctx = exc.ctx
    if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group (`shipyard models`): its help is the answer
        if exc.message.strip():  # without Rich, Click hands the help back instead of printing it
            sys.stdout.write(exc.message.rstrip() + "\n")
        sys.exit(0)
    message = exc.format_message().strip().rstrip(".")
    message = message[:1].lower() + message[1:]
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    _fail(f"error: {message}{hint}", USAGE_EXIT)


def _fail(message: str, code: int) -> None:
    sys.stderr.write(" ".join(message.split()) + "\n")
    sys.exit(code)


if __name__ == "__main__":
    main()
