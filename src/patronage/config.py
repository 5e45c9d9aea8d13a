"""Settings: one class, environment variables prefixed ``PATRONAGE_`` (12-factor)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

SqliteSynchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


class Settings(BaseSettings):
    """Every knob of a Patronage process. See docs/operations.md for what each one does."""

    model_config = SettingsConfigDict(env_prefix="PATRONAGE_", env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///var/patronage.db"
    # NORMAL in WAL mode never corrupts the database; a power cut may lose the last commits. FULL
    # makes every commit durable at the price of an fsync per commit (see docs/operations.md).
    sqlite_synchronous: SqliteSynchronous = "FULL"
    sqlite_busy_timeout_ms: int = 30_000
    db_pool_size: int = 10
    db_max_overflow: int = 20

    secret_key: str = Field(default="dev-insecure-change-me", min_length=16)
    base_url: str = "http://127.0.0.1:8000"
    cookie_secure: bool = True
    session_ttl_hours: int = 24 * 14
    max_body_bytes: int = 5 * 1024 * 1024
    api_key_cache_seconds: float = 5.0
    # POST /orders writes concurrent orders in one transaction and one commit (docs/ingestion.md#group-commit).
    order_group_commit: bool = True
    # Committer threads per process. One writes the biggest batches (what waited while it wrote) and so
    # the least CPU per order; more overlap batches with the database's round trips (a distant server).
    order_group_commit_threads: int = Field(default=1, ge=1, le=16)

    # Job queue
    worker_concurrency: int = 1
    worker_poll_interval: float = 0.5
    job_lease_seconds: int = 300
    job_max_attempts: int = 10
    succeeded_job_retention_days: int = 7

    # Webhooks
    webhook_timeout_seconds: float = 10.0
    webhook_signature_tolerance_seconds: int = 300

    # Outgoing email (magic links, notifications). Tests run a real SMTP server (aiosmtpd).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_timeout_seconds: float = 10.0
    mail_from: str = "Patronage <no-reply@patronage.local>"
    # "log": write messages to the log instead of sending them (development without an SMTP server).
    mail_backend: Literal["smtp", "log"] = "smtp"

    # Member portal
    magic_link_ttl_minutes: int = 15
    member_session_ttl_days: int = 30

    log_level: str = "INFO"
    log_json: bool | None = None  # None: JSON when stderr is not a TTY

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        # SQLAlchemy's own URL parser: "sqlite://" and "sqlite:///:memory:" are both in-memory.
        database = make_url(self.database_url).database
        return None if database in (None, "", ":memory:") else Path(database)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
