"""Settings: defaults follow SHIPYARD_HOME; the environment wins over shipyard.toml; bad values are one error."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.errors import ConfigError


def test_defaults_live_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "h"))
    settings = Settings.load()
    assert settings.database_url == f"sqlite:///{tmp_path / 'h' / 'shipyard.db'}"
    assert settings.artifact_uri == str(tmp_path / "h" / "artifacts")


def test_default_home_is_dot_shipyard_in_the_working_directory() -> None:
    assert Settings.load().home == Path(".shipyard")


def test_toml_file_is_read_and_the_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text('home = "from-toml"\nartifact_uri = "s3://bucket/models"\n')
    settings = Settings.load()
    assert settings.home == Path("from-toml") and settings.artifact_uri == "s3://bucket/models"
    monkeypatch.setenv("SHIPYARD_ARTIFACT_URI", "/data/artifacts")
    assert Settings.load().artifact_uri == "/data/artifacts"


def test_unknown_keys_and_bad_files_are_config_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text('databse_url = "typo"\n')
    with pytest.raises(ConfigError, match="databse_url"):
        Settings.load()
    (tmp_path / "shipyard.toml").write_text("home = [unclosed\n")
    with pytest.raises(ConfigError):
        Settings.load()
    monkeypatch.setenv("SHIPYARD_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match="absent.toml"):
        Settings.load()


def test_nothing_is_read_at_import(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "shipyard.toml").write_text("home = [broken\n")
    result = subprocess.run(
        [sys.executable, "-c", "import shipyard, shipyard.cli.main"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_drift_thresholds_are_checked_when_settings_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SHIPYARD_DRIFT_THRESHOLDS", '{"*": {"default": {"psi": 0.3}}, "fraud": {"features": {"x": {"alpha": 0.01}}}}'
    )
    settings = Settings.load()
    assert settings.drift_threshold_specs()["fraud"] == {"features": {"x": {"alpha": 0.01}}}
    assert hash(settings)  # settings stay hashable: one workspace per settings
    monkeypatch.setenv("SHIPYARD_DRIFT_THRESHOLDS", '{"*": {"default": {"psy": 0.3}}}')
    with pytest.raises(ConfigError, match="unknown drift threshold 'psy'"):
        Settings.load()


def test_a_deeply_nested_or_undecodable_settings_file_is_a_config_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    toml = tmp_path / "shipyard.toml"
    toml.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"cannot read settings file shipyard\.toml: it is nested too deeply"):
        Settings.load()
    toml.write_bytes(b'home = "caf\xe9"\n')  # Latin-1, not UTF-8
    with pytest.raises(ConfigError, match=r"shipyard\.toml: 'utf-8' codec can't decode"):
        Settings.load()
    monkeypatch.setenv("SHIPYARD_CONFIG", str(toml))
    toml.write_text("home = [unclosed\n")
    with pytest.raises(ConfigError, match=f"cannot read settings file {toml}"):
        Settings.load()
