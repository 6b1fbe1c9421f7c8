"""A command group whose commands are imported only when one of them runs.

``shipyard --help`` lists every command, but importing each command's module to read its one-line help
would import the registry, the server and their libraries: seconds before anything is printed. Each
lazy command is named here with its one-line summary and where it lives (``module:attribute``, a Typer
app for a group such as ``models`` or a function for a single command), and only the command that runs
is imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """Where a command lives and the one line ``shipyard --help`` shows for it without importing it."""

    target: str
    summary: str


def load_command(name: str, spec: LazyCommand) -> Any:
    """Import the command's module and build its Click command (a group for a Typer app)."""
    module_name, _, attribute = spec.target.partition(":")
    obj = getattr(importlib.import_module(module_name), attribute)
    command: Any
    if isinstance(obj, typer.Typer):
        command = typer.main.get_group(obj)  # a group even when the app has a single command
    else:
        holder = typer.Typer(rich_markup_mode=None)
        holder.command(name)(obj)
        command = typer.main.get_group(holder).commands[name]
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """A Typer group that adds the commands of ``lazy_commands``, imported on first use.

    Subclassed once per application with the table set as a class attribute, because Typer builds the
    group from the class (``typer.Typer(cls=...)``) rather than from an instance.
    """

    lazy_commands: Mapping[str, LazyCommand] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in self.lazy_commands if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        spec = self.lazy_commands.get(cmd_name)
        if command is not None or spec is None:
            return command
        if self._listing:  # the help page needs only the name and the summary
            return TyperCommand(cmd_name, help=spec.summary, short_help=spec.summary)
        command = load_command(cmd_name, spec)
        self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """As Typer's, but a typo is matched against the lazy commands too ("Did you mean 'models'?")."""
        try:
            return super().resolve_command(ctx, args)
        except Exception as exc:
            message = getattr(exc, "message", None)
            if isinstance(message, str) and args and message.startswith("No such command") and "?" not in message:
                matches = get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    exc.message = f"{message.rstrip('.')}. Did you mean {', '.join(repr(m) for m in matches)}?"  # type: ignore[attr-defined]
            raise


def lazy_group(commands: Mapping[str, LazyCommand]) -> type[LazyGroup]:
    """A LazyGroup class serving ``commands``, to pass as ``typer.Typer(cls=...)``."""
    return type("ShipyardGroup", (LazyGroup,), {"lazy_commands": dict(commands)})
