"""Alert events reach people: a signed webhook, a Slack-style hook, email over SMTP and a real Alertmanager,
each delivered from the outbox by the server holding the controller lease, retried while a target is down,
without slowing what the server serves. Events are written through the outbox API as the evaluator writes
them (``AlertEvent.to_dict()`` under ``alert.firing`` / ``alert.resolved``)."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.alerts.events import AlertEvent
from shipyard.alerts.metrics import METRICS
from shipyard.alerts.rules import AlertRule, parse_rule
from shipyard.config import Settings
from shipyard.errors import ConflictError, InvalidArgumentError
from shipyard.notify.prometheus import SERIES, prometheus_rules
from shipyard.store import outbox
from shipyard.workspace import Workspace
from tests.integration.test_cli import assert_one_line_error, run
from tests.integration.test_webhook_outbox import register_iris
from tests.notify_support import debian_tool, running_alertmanager, smtp_server
from tests.serving_support import running_server
from tests.webhook_receiver import webhook_receiver

SECRET_ENV = "SHIPYARD_TEST_HOOK_SECRET"
SECRET = "s3cret-for-the-hmac"
CLIENT = {"X-Shipyard-Client": "1"}  # a bodiless POST or DELETE says it is no browser form (the CSRF guard)


def fast(settings: Settings) -> Settings:
    """The controller ticks (and wakes the channels) five times a second."""
    return settings.model_copy(update={"poll_interval_s": 0.2})


def alert(
    status: str = "firing", *, rule: str = "drift-share", endpoint: str = "iris", severity: str = "critical"
) -> AlertEvent:
    started = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    return AlertEvent(
        status="firing" if status == "firing" else "resolved",
        rule=rule,
        endpoint=endpoint,
        metric="drift.share",
        value=0.42 if status == "firing" else 0.1,
        op=">",
        threshold=0.3,
        severity=severity,
        started_at=started,
        version="1",
        labels={"team": "risk"},
        ended_at=None if status == "firing" else datetime.now(UTC) - timedelta(seconds=1),
        summary=f"{endpoint} drift.share = 0.42 > 0.3 for 2 windows",
    )


def emit(workspace: Workspace, *events: tuple[str, str, dict[str, Any]]) -> None:
    with workspace.db.write() as conn:
        outbox.add(conn, list(events), datetime.now(UTC))


def emit_alert(workspace: Workspace, event: AlertEvent) -> None:
    emit(workspace, (event.endpoint, event.event, event.to_dict()))


def cursor(workspace: Workspace, channel: str) -> int:
    with workspace.db.read() as conn:
        state = outbox.state(conn, f"channel:{channel}")
    assert state is not None
    return state.last_id


def eventually(check: Callable[[], bool], timeout_s: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout_s}s")


def test_webhook_channel_gets_only_alert_events_signed_with_hmac_and_filters_by_severity(
    settings: Settings, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with webhook_receiver() as hook, webhook_receiver() as quiet:
        workspace.channels.add("pager", "webhook", {"url": hook.url, "secret_env": SECRET_ENV})
        workspace.channels.add("warnings", "webhook", {"url": quiet.url}, severities=["warning"])
        with running_server(fast(settings), workspace):
            emit(workspace, ("iris", "rollout.started", {"event": "rollout.started", "endpoint": "iris"}))
            emit_alert(workspace, alert("firing"))
            emit_alert(workspace, alert("resolved"))
            bodies = hook.wait_for(2)
            # the filtered channel's cursor moved past both alerts without sending either
            with workspace.db.read() as conn:
                newest = outbox.last_id(conn)
            eventually(lambda: cursor(workspace, "warnings") == newest, what="the filtered channel's cursor")
    assert [b["event"] for b in bodies] == ["alert.firing", "alert.resolved"]  # no rollout event
    assert bodies[0]["rule"] == "drift-share" and bodies[0]["value"] == 0.42 and bodies[0]["labels"] == {"team": "risk"}
    for delivery in hook.accepted:
        expected = "sha256=" + hmac.new(SECRET.encode(), delivery.raw, hashlib.sha256).hexdigest()
        assert delivery.headers["x-shipyard-signature"] == expected
        assert delivery.headers["x-shipyard-event"] == delivery.body["event"]
    assert quiet.arrived == []
    status = {s.channel.name: s for s in workspace.channels.list()}
    assert (status["pager"].delivered, status["warnings"].delivered) == (2, 0)
    # the secret is named, never stored
    assert SECRET not in str(workspace.channels.get("pager").stored())


def test_slack_channel_gets_text_and_blocks_for_each_alert(settings: Settings, workspace: Workspace) -> None:
    with webhook_receiver() as slack:
        workspace.channels.add("ops-slack", "slack", {"url": slack.url}, endpoints=["iris"])
        with running_server(fast(settings), workspace):
            emit_alert(workspace, alert("firing", endpoint="other"))  # not this channel's endpoint
            emit_alert(workspace, alert("firing"))
            (message,) = slack.wait_for(1)
    assert message["text"].startswith(":rotating_light: [FIRING critical] drift-share on iris")
    assert "drift.share = 0.42 > 0.3" in message["text"]
    assert [b["type"] for b in message["blocks"]] == ["section", "section"]
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in message["blocks"][1]["fields"]}
    assert fields["*endpoint*"] == "iris" and fields["*team*"] == "risk"
    assert len(slack.accepted) == 1


def test_email_channel_sends_firing_and_resolved_over_smtp(settings: Settings, workspace: Workspace) -> None:
    with smtp_server() as mailbox:
        workspace.channels.add(
            "oncall-mail",
            "email",
            {
                "smtp_host": mailbox.host,
                "smtp_port": mailbox.port,
                "to": ["oncall@example.com"],
                "from": "sy@example.com",
            },
        )
        with running_server(fast(settings), workspace):
            emit_alert(workspace, alert("firing"))
            emit_alert(workspace, alert("resolved"))
            messages = mailbox.wait_for(2)
    (to, firing), (_, resolved) = messages
    assert to == ["oncall@example.com"]
    assert firing["Subject"] == "[FIRING critical] drift-share on iris"
    assert resolved["Subject"] == "[RESOLVED critical] drift-share on iris"
    assert firing["From"] == "sy@example.com"
    body = firing.get_payload()
    assert "drift.share = 0.42 > 0.3 for 2 windows" in body and "team: risk" in body


def test_alertmanager_receives_the_firing_alert_and_its_resolve(
    settings: Settings, workspace: Workspace, tmp_path: Path
) -> None:
    with running_alertmanager(tmp_path) as am:
        workspace.channels.add("am", "alertmanager", {"url": am})
        with running_server(fast(settings), workspace):
            emit_alert(workspace, alert("firing"))

            def active() -> list[dict[str, Any]]:
                found = httpx.get(f"{am}/api/v2/alerts", params={"filter": 'alertname="drift-share"'}, timeout=5)
                return list(found.json())

            eventually(lambda: len(active()) == 1, what="the alert in Alertmanager")
            (seen,) = active()
            emit_alert(workspace, alert("resolved"))
            eventually(lambda: active() == [], what="the alert resolved in Alertmanager")
    assert seen["labels"] == {
        "alertname": "drift-share",
        "endpoint": "iris",
        "version": "1",
        "severity": "critical",
        "metric": "drift.share",
        "team": "risk",
        "source": "shipyard",
    }
    assert seen["status"]["state"] == "active"
    assert seen["annotations"]["summary"] == "iris drift.share = 0.42 > 0.3 for 2 windows"
    assert seen["startsAt"].startswith("2026-01-05T12:00:00")
    assert datetime.fromisoformat(seen["endsAt"].replace("Z", "+00:00")) > datetime.now(UTC) + timedelta(hours=23)
    assert workspace.channels.list()[0].delivered == 2


def test_a_channel_that_is_down_is_retried_and_serving_is_unaffected(settings: Settings, workspace: Workspace) -> None:
    register_iris(workspace)
    stalled = threading.Event()
    with webhook_receiver(fail_first=2) as flaky, webhook_receiver(gate=stalled) as hung:
        workspace.channels.add("flaky", "webhook", {"url": flaky.url})
        workspace.channels.add("hung", "webhook", {"url": hung.url})
        with running_server(fast(settings), workspace) as url:
            emit_alert(workspace, alert("firing"))
            eventually(lambda: len(hung.arrived) == 1, what="the hung channel's first attempt")
            # while the hung channel's worker waits on its target, predictions are served as usual
            for _ in range(20):
                answer = httpx.post(
                    f"{url}/v1/endpoints/iris/predict",
                    json={"instances": [{"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}]},
                )
                assert answer.status_code == 200
            assert hung.accepted == []
            flaky.wait_for(1)
            stalled.set()
            hung.wait_for(1, timeout_s=30)
    assert len(flaky.attempts) == 3  # two 503s, then accepted: the same event each time
    assert {d.headers["x-shipyard-delivery"] for d in flaky.attempts} == {
        flaky.accepted[0].headers["x-shipyard-delivery"]
    }
    status = {s.channel.name: s for s in workspace.channels.list()}
    assert (status["flaky"].delivered, status["flaky"].failed) == (1, 0)


def test_channels_cli_adds_lists_tests_and_removes_and_each_change_is_audited(settings: Settings) -> None:
    env = {"SHIPYARD_DATABASE_URL": settings.database_url, "SHIPYARD_ARTIFACT_URI": settings.artifact_uri}
    with webhook_receiver() as hook:
        run(
            ["channels", "add", "hook", "--kind", "webhook", "--url", hook.url, "--severity", "critical"],
            settings.home,
            extra_env=env,
        )
        listed = run(["channels", "list"], settings.home, extra_env=env).stdout
        assert "hook" in listed and "http://127.0.0.1:" in listed and "/hooks" not in listed  # the path is not shown
        tested = run(["channels", "test", "hook"], settings.home, extra_env=env)
        assert "accepted the test alert (HTTP 204)" in tested.stdout
        (sample,) = hook.events()
        assert sample["rule"] == "shipyard-channel-test" and sample["severity"] == "critical"
    # the receiver is gone: the test says so in one line
    assert_one_line_error(run(["channels", "test", "hook"], settings.home, ok=False, extra_env=env), "did not accept")
    run(["channels", "remove", "hook"], settings.home, extra_env=env)
    workspace = Workspace(settings)
    try:
        assert workspace.channels.list() == []
        actions = [e.action for e in workspace.audit.list(target="channel:hook")]
    finally:
        workspace.close()
    assert actions == ["channel.add", "channel.remove"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--kind", "pagerduty", "--url", "http://127.0.0.1:1/x"], "unknown channel kind 'pagerduty'"),
        (["--kind", "webhook"], "a webhook channel needs --url"),
        (["--kind", "slack", "--url", "ftp://example.com/x"], "must start with http:// or https://"),
        (
            ["--kind", "webhook", "--url", "http://127.0.0.1:1/x", "--secret-env", "NOT_SET_ANYWHERE"],
            "NOT_SET_ANYWHERE",
        ),
        (["--kind", "email", "--smtp-host", "127.0.0.1"], "an email channel needs --to"),
        (["--kind", "email", "--smtp-host", "h", "--to", "a@b", "--user-env", "HOME"], "go together"),
        (["--kind", "slack", "--url", "http://127.0.0.1:1/x", "--smtp-host", "h"], "do not apply"),
        (["--kind", "webhook", "--url", "http://127.0.0.1:1/x", "--severity", "urgent"], "unknown severity 'urgent'"),
    ],
)
def test_channels_add_refuses_bad_input_in_one_line(tmp_path: Path, args: list[str], fragment: str) -> None:
    assert_one_line_error(run(["channels", "add", "x", *args], tmp_path, ok=False), fragment)


def test_channels_over_http_for_admins(settings: Settings, workspace: Workspace) -> None:
    with webhook_receiver() as hook, running_server(fast(settings), workspace) as url:
        made = httpx.post(f"{url}/v1/channels", json={"name": "h", "kind": "webhook", "url": hook.url + "?token=x"})
        assert made.status_code == 201, made.text
        assert made.json()["target"] == f"http://127.0.0.1:{hook.url.split(':')[2].split('/')[0]}/…"
        again = httpx.post(f"{url}/v1/channels", json={"name": "h", "kind": "webhook", "url": hook.url})
        assert again.status_code == 409
        bad = httpx.post(f"{url}/v1/channels", json={"name": "b", "kind": "webhook"})
        assert bad.status_code == 422 and "needs --url" in bad.text
        listed = httpx.get(f"{url}/v1/channels").json()["channels"]
        assert [c["name"] for c in listed] == ["h"] and "token" not in str(listed)
        tested = httpx.post(f"{url}/v1/channels/h/test", headers=CLIENT).json()
        assert tested["accepted"] is True and tested["answer"] == "HTTP 204"
        assert httpx.delete(f"{url}/v1/channels/h", headers=CLIENT).status_code == 200
        assert httpx.delete(f"{url}/v1/channels/h", headers=CLIENT).status_code == 404


def test_service_refuses_a_second_channel_of_the_same_name(workspace: Workspace) -> None:
    workspace.channels.add("one", "slack", {"url": "https://hooks.example.com/T/B/X"})
    with pytest.raises(ConflictError, match="exists"):
        workspace.channels.add("one", "slack", {"url": "https://hooks.example.com/T/B/X"})
    with pytest.raises(InvalidArgumentError, match="channel name"):
        workspace.channels.add("Not Valid", "slack", {"url": "https://hooks.example.com/T/B/X"})


def _rule(**fields: Any) -> AlertRule:
    return parse_rule({"endpoint": "iris", "op": ">", "threshold": 0.3, **fields}, window_s=300)


def test_exported_prometheus_rules_pass_promtool_and_fire_as_shipyard_does(tmp_path: Path) -> None:
    promtool = debian_tool("promtool", package="prometheus")
    rules = [
        _rule(name=f"r-{path.replace('.', '-')}", metric=path, feature="f0" if m.feature == "required" else None)
        for path, m in METRICS.items()
    ]
    rules.append(
        _rule(name="drift-share", metric="drift.share", severity="critical", labels={"team": "risk"}, **{"for": 2})
    )
    rules.append(_rule(name="pinned", metric="outliers.rate", version="iris:3"))
    rules.append(_rule(name="by-alias", metric="outliers.rate", version="iris@champion"))
    text = prometheus_rules(rules, window_s=300)
    (tmp_path / "rules.yml").write_text(text)
    checked = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # a metric with no series, and an alias PromQL cannot resolve, are comments saying why
    assert "# skipped r-quality-unseen_rate: metric quality.unseen_rate has no series" in text
    assert "# skipped by-alias: version 'iris@champion' is an alias" in text
    assert 'shipyard_monitoring_outlier_rate{endpoint=\\"iris\\",version=\\"3\\"}' in text
    # every gauge the export reads is one /metrics exports (agreed with monitoring.series)
    from shipyard.monitoring.series import HELP

    assert {s.name for s in SERIES.values()} <= set(HELP)
    # held for 2 windows: pending at the first breached window, firing at the second, as the evaluator does
    (tmp_path / "test.yml").write_text(
        "rule_files: [rules.yml]\n"
        "evaluation_interval: 1m\n"
        "tests:\n"
        "  - interval: 5m\n"
        "    input_series:\n"
        '      - series: \'shipyard_monitoring_drifted_features_share{endpoint="iris",version="1"}\'\n'
        "        values: '0.1 0.5 0.5 0.5'\n"
        "    alert_rule_test:\n"
        "      - eval_time: 6m\n"
        "        alertname: drift_share\n"
        "        exp_alerts: []\n"
        "      - eval_time: 11m\n"
        "        alertname: drift_share\n"
        "        exp_alerts:\n"
        "          - exp_labels: {endpoint: iris, severity: critical, team: risk, shipyard_rule: drift-share}\n"
        "            exp_annotations:\n"
        "              summary: 'iris drift.share > 0.3 for 2 window(s)'\n"
        "              value: '0.5'\n"
    )
    tested = subprocess.run([promtool, "test", "rules", str(tmp_path / "test.yml")], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_alerts_export_prometheus_cli_writes_the_stored_rules(settings: Settings, workspace: Workspace) -> None:
    promtool = debian_tool("promtool", package="prometheus")
    register_iris(workspace)
    workspace.alerts.create({"name": "drift", "endpoint": "iris", "metric": "drift.share", "op": ">", "threshold": 0.3})
    workspace.alerts.create(
        {"name": "unseen", "endpoint": "iris", "metric": "quality.unseen_rate", "op": ">", "threshold": 0.1}
    )
    env = {"SHIPYARD_DATABASE_URL": settings.database_url, "SHIPYARD_ARTIFACT_URI": settings.artifact_uri}
    out = settings.home / "rules.yml"
    done = run(["alerts", "export-prometheus", "-o", str(out)], settings.home, extra_env=env)
    assert "1 rule(s) written" in done.stdout and "1 skipped" in done.stdout
    assert "alert: drift" in out.read_text()
    checked = subprocess.run([promtool, "check", "rules", str(out)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
