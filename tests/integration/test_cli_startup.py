"""The ``shipyard`` command starts fast: it imports only what the command that runs needs.

Timing is the benchmark's job (benchmarks/bench_cli.py); these tests hold the rule that makes it fast,
reading which modules a real ``shipyard`` process imported from ``python -X importtime``.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.cli import batch as batch_command
from shipyard.cli.lazy import load_command
from shipyard.cli.main import COMMANDS

# What registering or serving a model needs, and listing or asking for help does not.
MODEL_STACK = ("pandas", "sklearn", "scipy")
GROUPS = ("models", "endpoints", "rollout", "feedback", "db")


def imported(args: list[str], home: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``shipyard ARGS`` and return the result and the top-level packages the process imported."""
    env = {**os.environ, "SHIPYARD_HOME": str(home), "COLUMNS": "120"}
    env.pop("SHIPYARD_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "shipyard.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=home.parent,
        timeout=120,
    )
    modules = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            modules.add(line.rsplit("|", 1)[1].strip())
    return result, modules


def test_help_imports_no_model_stack_no_store_and_no_rich_help_renderer(tmp_path: Path) -> None:
    result, modules = imported(["--help"], tmp_path / "home")

    assert result.returncode == 0 and "Example:" in result.stdout
    for heavy in (*MODEL_STACK, "sqlalchemy", "numpy", "pyarrow", "pydantic_settings", "typer.rich_utils"):
        assert heavy not in modules, heavy
    # Nor any command's module: `--help` lists them from the table in shipyard.cli.main.
    assert not {f"shipyard.cli.{name}" for name in ("models", "batch", "serve", "rollout")} & modules


@pytest.mark.parametrize("group", GROUPS)
def test_group_help_imports_no_model_stack_and_no_store(tmp_path: Path, group: str) -> None:
    result, modules = imported([group, "--help"], tmp_path / "home")

    assert result.returncode == 0 and "Example:" in result.stdout
    assert not {*MODEL_STACK, "sqlalchemy"} & modules


@pytest.mark.parametrize("command", [["models", "list"], ["endpoints", "list"]])
def test_list_commands_on_an_empty_store_import_no_model_stack(tmp_path: Path, command: list[str]) -> None:
    result, modules = imported(command, tmp_path / "home")

    assert result.returncode == 0, result.stderr
    assert "no models registered yet" in result.stdout or "no endpoints yet" in result.stdout
    assert "sqlalchemy" in modules  # it did read the store (and created it: first use migrates)
    assert not set(MODEL_STACK) & modules


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    import shipyard

    result, modules = imported(["--version"], tmp_path / "home")

    assert (result.returncode, result.stdout) == (0, f"shipyard {shipyard.__version__}\n")
    assert "sqlalchemy" not in modules


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_listed_command_loads_and_documents_an_example(name: str) -> None:
    """The table that `shipyard --help` reads must point at real commands."""
    module = COMMANDS[name].target.partition(":")[0]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not in this tree yet")
    command = load_command(name, COMMANDS[name])

    assert command.name == name
    assert "Example:" in (command.help or ""), f"`shipyard {name} --help` has no example"


def test_batch_help_states_the_services_default_chunk_size() -> None:
    from shipyard.services.batch import DEFAULT_CHUNK_ROWS

    assert batch_command.DEFAULT_CHUNK_ROWS == DEFAULT_CHUNK_ROWS


def test_serve_hands_over_to_the_server_process_without_importing_the_server_stack(tmp_path: Path) -> None:
    """`shipyard serve` replaces itself with the server process as soon as the port is known free.

    Checked on a port in use, where the command stops right before it would exec: by then it has imported
    neither uvicorn nor the settings machinery nor the store, so none of that is paid twice at cold start.
    """
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        result, modules = imported(["serve", "--port", str(busy.getsockname()[1])], tmp_path / "home")

    assert result.returncode == 1 and "cannot listen on 127.0.0.1" in result.stderr
    for heavy in (*MODEL_STACK, "uvicorn", "fastapi", "pydantic_settings", "sqlalchemy", "numpy"):
        assert heavy not in modules, heavy
