"""Settings (contract 10): the environment is read once, defaults follow THREADLINE_ENV, and a bad value stops
the process with the variable's name."""

from __future__ import annotations

import pytest

from threadline_shared.settings import Environment, Settings, SettingsError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("THREADLINE_") or key in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(key)


def test_defaults_follow_the_contract() -> None:
    settings = Settings.load()

    assert settings.env is Environment.DEV
    assert settings.database_url == "postgresql://threadline:threadline@localhost:5432/threadline"
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.max_body_bytes == 65536
    assert settings.session_idle_seconds == 28800
    assert settings.stream_queue_size == 1024
    assert settings.scripted_deltas == ["Hello", " world"]


@pytest.mark.parametrize(
    ("env", "cors", "registration", "secure", "provider"),
    [
        ("dev", ["http://localhost:3000", "http://localhost:5173"], True, False, "echo"),
        ("test", [], True, False, "scripted"),
        ("prod", [], False, True, "echo"),
    ],
)
def test_environment_dependent_defaults(
    monkeypatch: pytest.MonkeyPatch,
    env: str,
    cors: list[str],
    registration: bool,
    secure: bool,
    provider: str,
) -> None:
    monkeypatch.setenv("THREADLINE_ENV", env)
    settings = Settings.load()

    assert settings.cors_origins == cors
    assert settings.registration_enabled is registration
    assert settings.cookie_secure is secure
    assert settings.assistant_provider == provider


def test_values_come_from_the_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/x")
    monkeypatch.setenv("REDIS_URL", "redis://cache/1")
    monkeypatch.setenv("THREADLINE_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("THREADLINE_CSRF_ENABLED", "OFF")
    monkeypatch.setenv("THREADLINE_TRUST_PROXY_HEADERS", "Yes")
    monkeypatch.setenv("THREADLINE_ASSISTANT_STOP_SEQUENCES", '["\\n\\n", "END"]')
    settings = Settings.load()

    assert settings.database_url == "postgresql://db/x"
    assert settings.redis_url == "redis://cache/1"
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.csrf_enabled is False
    assert settings.trust_proxy_headers is True
    assert settings.assistant_stop_sequences == ["\n\n", "END"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("THREADLINE_MAX_BODY_BYTES", "lots"),
        ("THREADLINE_ENV", "staging"),
        ("THREADLINE_CSRF_ENABLED", "maybe"),
        ("THREADLINE_SESSION_MAX_PER_USER", "0"),
        ("THREADLINE_COOKIE_SAMESITE", "sometimes"),
    ],
)
def test_an_invalid_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        Settings.load()


def test_cross_field_rules_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_SESSION_IDLE_SECONDS", "100")
    monkeypatch.setenv("THREADLINE_SESSION_ABSOLUTE_SECONDS", "50")
    with pytest.raises(SettingsError, match="THREADLINE_SESSION_ABSOLUTE_SECONDS"):
        Settings.load()


def test_settings_are_frozen() -> None:
    settings = Settings.load()
    with pytest.raises(ValueError, match="frozen"):
        settings.port = 1  # type: ignore[misc]
