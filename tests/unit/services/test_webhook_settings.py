"""``SHIPYARD_WEBHOOK_URLS``: a comma-separated string or a JSON list of http(s) URLs; anything else is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.errors import ConfigError, InvalidArgumentError
from shipyard.services.webhooks import WebhookDelivery
from shipyard.serving.app import create_app
from shipyard.workspace import Workspace


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://a.example/hook", ("http://a.example/hook",)),
        (" http://a.example/1 , https://b.example:8443/2 ,", ("http://a.example/1", "https://b.example:8443/2")),
        ('["http://a.example/1", "https://b.example/2"]', ("http://a.example/1", "https://b.example/2")),
        ("", ()),
    ],
)
def test_webhook_urls_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: tuple[str, ...]
) -> None:
    monkeypatch.setenv("SHIPYARD_WEBHOOK_URLS", raw)
    assert Settings.load().webhook_urls == expected


@pytest.mark.parametrize(
    "raw", ["ftp://a.example/hook", "a.example/hook", "http://", '["http://ok.example", 3]', "[oops"]
)
def test_a_bad_webhook_url_is_one_config_error_naming_it(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("SHIPYARD_WEBHOOK_URLS", raw)
    with pytest.raises(ConfigError, match="webhook_urls"):
        Settings.load()


def test_webhook_urls_from_python_and_toml_and_settings_stay_hashable(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text('webhook_urls = ["https://hooks.example/a"]\n')
    assert Settings.load().webhook_urls == ("https://hooks.example/a",)
    settings = Settings(webhook_urls=["http://127.0.0.1:9/hook"])
    assert settings.webhook_urls == ("http://127.0.0.1:9/hook",)
    assert hash(settings) == hash(Settings(webhook_urls=("http://127.0.0.1:9/hook",)))


def test_a_server_delivers_webhooks_only_when_urls_are_configured(tmp_path: Path) -> None:
    plain = create_app(Settings(home=tmp_path))
    assert plain.state.controller.webhooks is None
    hooked = create_app(Settings(home=tmp_path, webhook_urls=["http://127.0.0.1:9/hook"]))
    delivery = hooked.state.controller.webhooks
    assert isinstance(delivery, WebhookDelivery)
    assert [r.url for r in delivery.receivers] == ["http://127.0.0.1:9/hook"]
    for app in (plain, hooked):
        app.state.workspace.close()


def test_the_delivery_refuses_a_url_it_cannot_post_to(tmp_path: Path) -> None:
    workspace = Workspace(Settings(home=tmp_path))
    try:
        with pytest.raises(InvalidArgumentError, match="ftp://x"):
            WebhookDelivery(workspace.db, ["ftp://x/hook"])
    finally:
        workspace.close()
