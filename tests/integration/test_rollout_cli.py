"""``shipyard rollout`` as users run it: a real process over a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli.context import state as cli_state
from shipyard.cli.main import app, main
from shipyard.config import Settings
from shipyard.rollouts.evidence import ArmEvidence, ShadowComparison
from shipyard.services.rollouts import SHADOW_ARM, RolloutService
from shipyard.store import rollouts as repo
from shipyard.workspace import Workspace
from tests.integration.test_cli import assert_one_line_error, run
from tests.models import iris


@pytest.fixture
def store(settings: Settings, workspace: Workspace) -> tuple[Path, dict[str, str]]:
    """Endpoint ``iris`` serving iris:1, with iris:2 registered; the CLI reaches the same store by environment."""
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.endpoints.create("iris", model="iris:1")
    env = {"SHIPYARD_DATABASE_URL": settings.database_url, "SHIPYARD_ARTIFACT_URI": settings.artifact_uri}
    return settings.home, env


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def error_line(self, *fragments: str) -> str:
        """The one stderr line of a failed command, checked to name every fragment."""
        assert self.code != 0, self.stdout
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in self.stderr, self.stderr
        for fragment in fragments:
            assert fragment in lines[0], lines[0]
        return lines[0]


@pytest.fixture
def cli(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Result]:
    """The ``shipyard`` entry point run in this process over the test's store: the same code path as the real
    command (``main`` turns errors into one line and an exit status) without paying for a new interpreter."""

    def invoke(*args: str) -> Result:
        monkeypatch.setattr(cli_state, "_workspace", workspace)
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return invoke


def test_a_canary_is_started_shown_and_steered_with_the_rollout_commands(
    store: tuple[Path, dict[str, str]], cli: Callable[..., Result]
) -> None:
    canary = ["--strategy", "canary", "--steps", "5,25,50,100", "--interval", "5m"]
    gates = ["--min-requests", "50", "--max-latency-ratio", "2"]
    started = cli("rollout", "start", "iris", "--to", "iris:2", *canary, *gates, "--json")
    assert started.code == 0, started.stderr
    state = json.loads(started.stdout)
    rollout_id = state["id"]
    assert (state["status"], state["weight"]) == ("running", 0.05)
    assert state["spec"]["gates"]["min_requests"] == 50 and state["spec"]["gates"]["max_latency_ratio"] == 2.0
    assert state["spec"]["gates"]["max_error_rate"] == 0.05  # a gate not given keeps its default

    text = cli("rollout", "status", "iris").stdout
    for expected in (rollout_id, "canary", "iris:1 (stable) -> iris:2 (candidate)", "running", "step 1 of 4"):
        assert expected in text
    for expected in ("this step's evidence", "history", "started", "next: step 1 of 4 (5%) ends in"):
        assert expected in text
    view = json.loads(cli("rollout", "status", "iris", "--json").stdout)
    assert view["id"] == rollout_id and view["next_action"].startswith("step 1 of 4")

    cli("rollout", "start", "iris", "--to", "iris:2", "--strategy", "replace").error_line(rollout_id, "in progress")
    assert "paused (paused, 5% to the candidate)" in cli("rollout", "pause", "iris").stdout
    cli("rollout", "pause", "iris").error_line(rollout_id, "already paused")
    assert "resumed (running" in cli("rollout", "resume", "iris").stdout
    cli("rollout", "resume", "iris").error_line(rollout_id, "is not paused")
    assert "now 25%" in cli("rollout", "promote", "iris").stdout
    aborted = cli("rollout", "abort", "iris", "--reason", "support complaints").stdout
    assert "rolled_back" in aborted and "support complaints" in aborted
    cli("rollout", "promote", "iris").error_line(rollout_id, "rolled_back")

    history = json.loads(cli("rollout", "status", "iris", "--json").stdout)["events"]
    assert [e["kind"] for e in history] == ["started", "paused", "resumed", "promoted", "aborted", "rolled_back"]


class Clock:
    """An injected clock: rollout steps end without waiting in real time."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _with_clock(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> tuple[RolloutService, Clock]:
    clock = Clock()
    service = RolloutService(workspace.registry, workspace.endpoints, clock=clock)
    monkeypatch.setattr(workspace, "rollouts", service)
    return service, clock


def test_status_shows_each_arms_evidence_and_the_gates_behind_a_held_step(
    store: tuple[Path, dict[str, str]],
    workspace: Workspace,
    cli: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service, clock = _with_clock(workspace, monkeypatch)
    state = service.start("iris", to="iris:2", strategy="canary", steps="10,100", interval_s="1m")
    stable = ArmEvidence.from_requests([4.0] * 30, predictions=["0"] * 30)
    candidate = ArmEvidence.from_requests([6.0] * 8, errors=[True] + [False] * 7, predictions=["0"] * 8)
    with workspace.db.write() as conn:
        repo.upsert_evidence(conn, state.id, 0, "stable", "w1", stable.to_dict(), clock.now)
        repo.upsert_evidence(conn, state.id, 0, "candidate", "w1", candidate.to_dict(), clock.now)
    clock.now += timedelta(minutes=2)
    assert [e.kind.value for e in service.tick(state).events] == ["held"]  # 8 candidate requests < 100

    text = cli("rollout", "status", "iris").stdout
    for expected in ("this step's evidence", "stable", "candidate", "12.50%", "latest analysis (held", "error_rate"):
        assert expected in text
    assert "is held for more evidence" in text
    view = json.loads(cli("rollout", "status", "iris", "--json").stdout)
    assert view["evidence"]["candidate"]["requests"] == 8 and view["evidence"]["stable"]["errors"] == 0


def test_status_shows_the_shadow_report(
    store: tuple[Path, dict[str, str]],
    workspace: Workspace,
    cli: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service, clock = _with_clock(workspace, monkeypatch)
    state = service.start("iris", to="iris:2", strategy="shadow", sample=0.5)
    comparison = ShadowComparison.empty()
    comparison = comparison.record("req-1", [0, 1], [0, 2], latency_ms=3.0, classification=True)
    comparison = comparison.record("req-2", [1], None, latency_ms=9.0, classification=True)
    with workspace.db.write() as conn:
        repo.upsert_evidence(conn, state.id, 0, SHADOW_ARM, "w1", comparison.to_dict(), clock.now)
    text = cli("rollout", "status", "iris").stdout
    for expected in ("sample 50% of requests shadowed", "shadow report", "agreement rate", "50.00%", "req-1 row 1"):
        assert expected in text
    assert json.loads(cli("rollout", "status", "iris", "--json").stdout)["shadow_report"]["candidate_errors"] == 1


def test_the_real_command_fails_in_one_line_and_replaces(store: tuple[Path, dict[str, str]]) -> None:
    """A real process each time: what the in-process runs cannot show (exit status, stderr). Its webhooks are
    sent by the server holding the controller lease (tests/integration/test_webhook_outbox.py)."""
    home, env = store
    started = run(["rollout", "start", "iris", "--to", "iris:2", "--strategy", "ab", "--json"], home, extra_env=env)
    rollout_id = json.loads(started.stdout)["id"]

    second = run(["rollout", "start", "iris", "--to", "iris:2", "--strategy", "replace"], home, ok=False, extra_env=env)
    assert_one_line_error(second, f"rollout {rollout_id} in progress")
    run(["rollout", "abort", "iris"], home, extra_env=env)

    replaced = run(["rollout", "start", "iris", "--to", "iris:2", "--strategy", "replace"], home, extra_env=env).stdout
    assert "completed: iris:2 is now stable" in replaced
    shown = json.loads(run(["endpoints", "show", "iris", "--json"], home, extra_env=env).stdout)
    assert (shown["model"], shown["version"]) == ("iris:2", "iris:2")


BAD_OPTIONS = [
    (["--strategy", "canary", "--steps", "5,3,100"], ["steps", "3% follows 5%", "5,3,100"]),
    (["--strategy", "canary", "--steps", "5,50"], ["steps must end at 100%", "5,50"]),
    (["--strategy", "nope"], ["unknown rollout strategy 'nope'", "canary"]),
    (["--strategy", "ab", "--split", "150"], ["--split", "'150'"]),
    (["--strategy", "canary", "--interval", "0s"], ["interval must be above 0"]),
    (["--strategy", "canary", "--max-error-rate", "lots"], ["--max-error-rate", "'lots'"]),
    (["--strategy", "replace", "--steps", "5,100"], ["option 'steps' applies to canary", "'replace'"]),
]


@pytest.mark.parametrize(("args", "fragments"), BAD_OPTIONS)
def test_bad_options_are_one_line_errors_naming_the_value(
    store: tuple[Path, dict[str, str]], cli: Callable[..., Result], args: list[str], fragments: list[str]
) -> None:
    cli("rollout", "start", "iris", "--to", "iris:2", *args).error_line(*fragments)
    cli("rollout", "status", "iris").error_line("endpoint 'iris' has no rollout")  # nothing was started


@pytest.mark.parametrize("command", ["start", "status", "promote", "pause", "resume", "abort"])
def test_every_rollout_command_has_help_with_an_example(command: str) -> None:
    result = CliRunner().invoke(app, ["rollout", command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"Example: shipyard rollout {command} " in " ".join(result.output.split())
