"""Settings: defaults, the MESO_ environment, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from api.settings import REPO_ROOT, Settings, normalise_database_url


def test_defaults() -> None:
    settings = Settings()
    assert settings.database_url == f"sqlite+aiosqlite:///{REPO_ROOT / 'var' / 'meso.db'}"
    assert Path(__file__).resolve().parents[2] == REPO_ROOT
    assert settings.rasa_url == "http://127.0.0.1:5005"
    assert settings.action_server_url == "http://127.0.0.1:5055"
    assert settings.rasa_token.get_secret_value() == ""
    assert settings.rasa_timeout == 4.0
    assert settings.readiness_timeout == 2.0
    assert settings.max_text_chars == 1000
    assert settings.rate_limit_messages_per_minute == 30
    assert settings.rate_limit_conversations_per_minute == 60
    assert settings.rate_limit_summaries_per_minute == 60
    assert settings.knowledge_dir == REPO_ROOT / "knowledge"
    assert settings.clinic_file == REPO_ROOT / "clinic.yml"
    assert settings.tracker_url == f"sqlite+aiosqlite:///{REPO_ROOT / 'var' / 'rasa-tracker.db'}"
    assert settings.transcript_idle_minutes == 30
    assert settings.purge_interval_seconds == 60
    assert settings.rate_limit_history_per_minute == 60
    assert settings.widget_origins == []


def test_consent_and_widget_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MESO_CLINIC_FILE", str(tmp_path / "other-clinic.yml"))
    monkeypatch.setenv("MESO_TRACKER_URL", "postgresql://rasa:pw@db/meso_tracker")
    monkeypatch.setenv("MESO_TRANSCRIPT_IDLE_MINUTES", "15")
    monkeypatch.setenv("MESO_PURGE_INTERVAL_SECONDS", "5")
    monkeypatch.setenv(
        "MESO_WIDGET_ORIGINS", " https://www.Example-Clinic.test/ ,http://localhost:8080,"
    )

    settings = Settings()

    assert settings.clinic_file == tmp_path / "other-clinic.yml"
    assert settings.tracker_url == "postgresql+asyncpg://rasa:pw@db/meso_tracker"
    assert settings.transcript_idle_minutes == 15
    assert settings.purge_interval_seconds == 5
    assert settings.widget_origins == ["https://www.example-clinic.test", "http://localhost:8080"]


def test_var_dir_moves_the_default_tracker_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MESO_VAR_DIR", str(tmp_path / "data"))
    assert Settings().tracker_url == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'rasa-tracker.db'}"


@pytest.mark.parametrize(
    "origins",
    ["*", "www.example.test", "https://example.test/chat", "ftp://example.test", "https://"],
)
def test_widget_origins_must_be_origins(monkeypatch: pytest.MonkeyPatch, origins: str) -> None:
    monkeypatch.setenv("MESO_WIDGET_ORIGINS", origins)
    with pytest.raises(ValidationError, match="is not an origin"):
        Settings()


def test_environment_with_meso_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MESO_DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("MESO_RASA_URL", "http://10.0.0.5:5005/")
    monkeypatch.setenv("MESO_RASA_TOKEN", "sekrit-value")
    monkeypatch.setenv("MESO_ACTION_SERVER_URL", "http://10.0.0.5:5055")
    monkeypatch.setenv("MESO_RASA_TIMEOUT", "2.5")
    monkeypatch.setenv("MESO_MAX_TEXT_CHARS", "500")
    monkeypatch.setenv("MESO_RATE_LIMIT_MESSAGES_PER_MINUTE", "0")
    monkeypatch.setenv("MESO_RATE_LIMIT_CONVERSATIONS_PER_MINUTE", "5")
    monkeypatch.setenv("MESO_RATE_LIMIT_SUMMARIES_PER_MINUTE", "7")
    monkeypatch.setenv("MESO_KNOWLEDGE_DIR", str(tmp_path / "kb"))
    monkeypatch.setenv("RASA_URL", "http://ignored-without-prefix")

    settings = Settings()

    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path}/x.db"
    assert settings.rasa_url == "http://10.0.0.5:5005"
    assert settings.rasa_token.get_secret_value() == "sekrit-value"
    assert "sekrit-value" not in repr(settings)
    assert settings.rasa_timeout == 2.5
    assert settings.max_text_chars == 500
    assert settings.rate_limit_messages_per_minute == 0
    assert settings.rate_limit_conversations_per_minute == 5
    assert settings.rate_limit_summaries_per_minute == 7
    assert settings.knowledge_dir == tmp_path / "kb"


def test_var_dir_moves_the_default_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MESO_VAR_DIR", str(tmp_path / "data"))
    assert Settings().database_url == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'meso.db'}"
    monkeypatch.setenv("MESO_DATABASE_URL", f"sqlite:///{tmp_path}/other.db")
    assert Settings().database_url == f"sqlite+aiosqlite:///{tmp_path}/other.db"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////srv/meso.db", "sqlite+aiosqlite:////srv/meso.db"),
        ("sqlite+aiosqlite:///rel.db", "sqlite+aiosqlite:///rel.db"),
        ("postgresql://meso:pw@db:5432/meso", "postgresql+asyncpg://meso:pw@db:5432/meso"),
        ("postgresql+asyncpg://meso:pw@db/meso", "postgresql+asyncpg://meso:pw@db/meso"),
    ],
)
def test_database_urls_get_an_async_driver(url: str, expected: str) -> None:
    assert normalise_database_url(url) == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MESO_RASA_URL", "localhost:5005"),
        ("MESO_RASA_TIMEOUT", "0"),
        ("MESO_MAX_TEXT_CHARS", "0"),
        ("MESO_RATE_LIMIT_MESSAGES_PER_MINUTE", "-1"),
        ("MESO_TRANSCRIPT_IDLE_MINUTES", "0"),
        ("MESO_PURGE_INTERVAL_SECONDS", "0"),
        ("MESO_TRACKER_URL", "not a url"),
        ("MESO_DATABASE_URL", "::"),
    ],
)
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()
