"""Secrets hygiene: keys and the database password appear in no log, error body, /metrics output or audit row."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from shipyard.config import Settings
from shipyard.core.identity import Role, split_key
from shipyard.errors import StoreError
from shipyard.store.db import Database, redact
from shipyard.store.tables import audit_events
from shipyard.workspace import Workspace
from tests.models import iris
from tests.serving_support import running_server

PASSWORD = "SECRETPW"
ROW = {"instances": [{"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}]}


@pytest.fixture
def secret_store(postgres_url: str, tmp_path: object) -> Iterator[Workspace]:
    """PostgreSQL reached by a URL that carries a password (trust auth accepts any)."""
    url = sa.engine.make_url(postgres_url).set(password=PASSWORD).render_as_string(hide_password=False)
    settings = Settings(home=tmp_path, database_url=url, artifact_uri=f"{tmp_path}/artifacts", poll_interval_s=0.2)
    workspace = Workspace(settings)
    try:
        yield workspace
    finally:
        workspace.close()


def test_no_secret_reaches_logs_errors_metrics_or_the_audit_trail(
    secret_store: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    ws = secret_store
    x, _, model = iris()
    ws.registry.register(model, name="iris", sample_input=x[:20])
    ws.endpoints.create("iris", model="iris:1")
    seen: list[str] = []
    secrets: list[str] = [PASSWORD]
    with caplog.at_level(logging.DEBUG), running_server(ws.settings, ws) as url:
        _, admin = ws.keys.create("admin", role=Role.ADMIN)
        _, app = ws.keys.create("app", role=Role.PREDICTOR, endpoints=["iris"])
        for secret in (admin, app):
            secrets += [secret, (split_key(secret) or ("", ""))[1]]
        wrong = app[:-1] + ("A" if app[-1] != "A" else "B")
        secrets += [wrong, (split_key(wrong) or ("", ""))[1]]

        def call(method: str, path: str, key: str | None, **kwargs: object) -> httpx.Response:
            headers = {"authorization": f"Bearer {key}"} if key else {}
            response = httpx.request(method, f"{url}{path}", headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]
            seen.append(response.text + str(response.headers))
            return response

        deadline = time.monotonic() + 10
        while call("POST", "/v1/endpoints/iris/predict", None, json=ROW).status_code != 401:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert call("POST", "/v1/endpoints/iris/predict", app, json=ROW).status_code == 200
        assert call("POST", "/v1/endpoints/iris/predict", wrong, json=ROW).status_code == 401
        assert call("POST", "/v1/endpoints/iris/predict", f"{app}x", json=ROW).status_code == 401
        assert call("POST", "/v1/endpoints/iris/predict", app, json={"instances": [{"f0": 1}]}).status_code == 422
        assert call("DELETE", "/v1/endpoints/iris", app).status_code in (403, 415)
        assert call("GET", "/v1/endpoints/nope", admin).status_code == 404
        assert call("POST", "/v1/endpoints/iris/feedback", app, content=b"{").status_code in (400, 415)
        ws.keys.revoke("app")
        deadline = time.monotonic() + 10
        while call("POST", "/v1/endpoints/iris/predict", app, json=ROW).status_code != 401:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        seen.append(call("GET", "/metrics", None).text)
    with ws.db.read() as conn:
        seen += [str(dict(row._mapping)) for row in conn.execute(sa.select(audit_events))]
    assert any("key.create" in text for text in seen)  # the audit rows were read
    seen += [record.getMessage() for record in caplog.records]
    seen += [repr(ws.settings), str(ws.settings), repr(ws.db)]
    for secret in secrets:
        leaks = [text[:200] for text in seen if secret in text]
        assert not leaks, f"a secret appears in: {leaks}"


def test_database_urls_are_shown_with_the_password_masked(tmp_path: object) -> None:
    url = f"postgresql+psycopg://shipyard:{PASSWORD}@127.0.0.1:1/nowhere"
    assert PASSWORD not in redact(url) and PASSWORD not in redact(f"postgresql://u@h/db?password={PASSWORD}")
    assert PASSWORD not in repr(Settings(home=tmp_path, database_url=url))  # type: ignore[arg-type]
    with pytest.raises(StoreError) as failed:
        Database(url)
    assert PASSWORD not in str(failed.value) and "shipyard:***@127.0.0.1:1" in str(failed.value)


def test_the_api_key_setting_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_API_KEY", "shy_abcdefabcdefabcd_" + "s" * 43)
    settings = Settings.load()
    assert settings.api_key is not None and "sss" not in repr(settings) and "sss" not in settings.model_dump_json()
    assert settings.api_key.get_secret_value().endswith("s" * 43)
