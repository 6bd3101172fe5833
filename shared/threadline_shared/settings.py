"""Settings: one frozen object per process, read from the environment once at the composition root.

Every variable of contract section 10 is a field here (prefix ``THREADLINE_``; ``DATABASE_URL`` and
``REDIS_URL`` have no prefix). Defaults that depend on ``THREADLINE_ENV`` are resolved after loading.
Services subclass :class:`Settings` only to change their default port. An invalid value stops the process
with :class:`SettingsError`, whose message names the environment variable.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "THREADLINE_"


class Environment(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class SettingsError(Exception):
    """Raised when the environment holds an invalid value; the message names the variable."""


CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="ignore", case_sensitive=False
    )

    service_name: str = Field(default="threadline", exclude=True)

    database_url: str = Field(
        default="postgresql://threadline:threadline@localhost:5432/threadline",
        validation_alias=AliasChoices("DATABASE_URL"),
    )
    redis_url: str = Field(default="redis://localhost:6379/0", validation_alias=AliasChoices("REDIS_URL"))
    env: Environment = Environment.DEV
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    database_pool_min_size: int = Field(default=2, ge=0)
    database_pool_max_size: int = Field(default=10, ge=1)

    max_body_bytes: int = Field(default=65536, ge=1)
    cors_origins: CommaList | None = None
    trust_proxy_headers: bool = False
    registration_enabled: bool | None = None

    session_idle_seconds: int = Field(default=28800, ge=1)
    session_absolute_seconds: int = Field(default=604800, ge=1)
    session_max_per_user: int = Field(default=5, ge=1)
    csrf_enabled: bool = True
    cookie_secure: bool | None = None
    cookie_samesite: Literal["lax", "strict", "none"] = "lax"
    cookie_domain: str | None = None
    login_per_ip_per_minute: int = Field(default=10, ge=1)
    login_per_account_per_minute: int = Field(default=10, ge=1)
    # Not in the contract: "fast" = Argon2id with argon2-cffi's cheapest parameters, for test suites only.
    password_hashing: Literal["default", "fast"] = "default"
    invite_default_ttl_seconds: int = Field(default=86400, ge=1)
    invite_max_ttl_seconds: int = Field(default=2592000, ge=1)

    stream_retry_ms: int = Field(default=3000, ge=0)
    stream_keepalive_seconds: float = Field(default=15, gt=0)
    stream_queue_size: int = Field(default=1024, ge=2)
    event_retention_hours: float = Field(default=48, gt=0)
    event_retention_max_events: int = Field(default=10000, ge=1)
    event_prune_interval_seconds: float = Field(default=60, gt=0)
    event_prune_batch_size: int = Field(default=1000, ge=1)
    unread_fanout_max_participants: int = Field(default=200, ge=0)

    presence_timeout_seconds: float = Field(default=60, gt=0)
    presence_sweep_interval_ms: int = Field(default=1000, ge=1)
    typing_max_seconds: int = Field(default=30, ge=0)

    rate_limit_enabled: bool = True
    rate_limit_default_rps: float = Field(default=50, gt=0)
    rate_limit_default_burst: int = Field(default=100, ge=1)
    rate_limit_reload_seconds: float = Field(default=60, gt=0)
    rate_limit_redis_timeout_ms: int = Field(default=250, ge=1)

    assistant_provider: Literal["scripted", "echo", "openai"] | None = None
    assistant_timeout_seconds: float = Field(default=30, ge=0)
    assistant_flush_interval_ms: int = Field(default=50, ge=1)
    assistant_flush_max_tokens: int = Field(default=64, ge=1)
    assistant_lease_seconds: float = Field(default=30, gt=0)
    assistant_concurrency: int = Field(default=8, ge=1)
    assistant_max_tokens: int = Field(default=1024, ge=1)
    assistant_temperature: float | None = None
    assistant_stop_sequences: list[str] | None = None
    assistant_system_prompt: str = ""
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: str = Field(default="", repr=False)
    openai_model: str = "gpt-4o-mini"
    echo_delay_ms: int = Field(default=20, ge=0)
    scripted_deltas: list[str] = Field(default_factory=lambda: ["Hello", " world"])
    scripted_delay_ms: int = Field(default=0, ge=0)
    scripted_finish_reason: Literal["stop", "length", "stop_sequence"] = "stop"
    scripted_error_after: int | None = Field(default=None, ge=0)
    scripted_stall_after: int | None = Field(default=None, ge=0)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("assistant_stop_sequences", "scripted_deltas", mode="before")
    @classmethod
    def _parse_json_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else None
        return value

    @model_validator(mode="after")
    def _resolve_env_defaults(self) -> Self:
        dev, test, prod = Environment.DEV, Environment.TEST, Environment.PROD
        resolved: dict[str, Any] = {}
        if self.cors_origins is None:
            resolved["cors_origins"] = (
                ["http://localhost:3000", "http://localhost:5173"] if self.env is dev else []
            )
        if self.registration_enabled is None:
            resolved["registration_enabled"] = self.env in (dev, test)
        if self.cookie_secure is None:
            resolved["cookie_secure"] = self.env is prod
        if self.assistant_provider is None:
            resolved["assistant_provider"] = "scripted" if self.env is test else "echo"
        for name, value in resolved.items():
            object.__setattr__(self, name, value)
        if self.session_absolute_seconds < self.session_idle_seconds:
            raise ValueError("THREADLINE_SESSION_ABSOLUTE_SECONDS must be >= THREADLINE_SESSION_IDLE_SECONDS")
        if self.cookie_samesite == "none" and not self.cookie_secure:
            raise ValueError("THREADLINE_COOKIE_SAMESITE=none needs THREADLINE_COOKIE_SECURE=true")
        return self

    @classmethod
    def load(cls, **overrides: Any) -> Self:
        """Read the environment (plus explicit overrides); raise SettingsError naming the bad variable."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                field = str(error["loc"][0]) if error["loc"] else ""
                variable = env_variable_name(field) if field else "settings"
                problems.append(f"{variable}: {error['msg']}")
            raise SettingsError("invalid configuration: " + "; ".join(problems)) from exc


def env_variable_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    if field in ("database_url", "DATABASE_URL"):
        return "DATABASE_URL"
    if field in ("redis_url", "REDIS_URL"):
        return "REDIS_URL"
    return ENV_PREFIX + field.upper()
