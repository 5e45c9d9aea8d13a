"""Rate limits: fixed windows, counted where every serving process sees them.

On PostgreSQL several server processes share the limit through a counter row per (key, window),
incremented with ``INSERT .. ON CONFLICT DO UPDATE .. RETURNING`` in its own autocommit statement, so
a request that fails (a wrong password) still counts. On SQLite Patronage serves from one process
(one writer), so an in-process counter is exact and never waits for the database's write lock.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Index, String, delete, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, Session, mapped_column

from patronage.kit.clock import utcnow
from patronage.kit.db import Database
from patronage.kit.errors import RateLimited
from patronage.kit.models import Base, IdMixin
from patronage.kit.security import hmac_sha256_hex
from patronage.kit.types import UTCDateTime


class RateLimitCounter(IdMixin, Base):
    __tablename__ = "rate_limit_counters"
    __table_args__ = (Index("uq_rate_limit_counters_key_window", "key", "window_start", unique=True),)

    key: Mapped[str] = mapped_column(String(300))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(default=0)


@dataclass(frozen=True)
class Limit:
    name: str
    max_requests: int
    per: timedelta


# The defaults; docs/api.md lists them.
LOGIN = Limit("login", 10, timedelta(minutes=5))
LOGIN_BY_IP = Limit("login_ip", 50, timedelta(minutes=5))
MAGIC_LINK = Limit("magic_link", 5, timedelta(minutes=15))
MAGIC_LINK_BY_IP = Limit("magic_link_ip", 30, timedelta(minutes=15))
REDEMPTION = Limit("redemption", 30, timedelta(minutes=1))
COUPON_VALIDATION = Limit("coupon_validation", 120, timedelta(minutes=1))


_local_lock = threading.Lock()
_local_counts: dict[tuple[str, float], int] = {}


def _count_locally(key: str, window: float, cost: int) -> int:
    with _local_lock:
        if len(_local_counts) > 100_000:
            _local_counts.clear()
        count = _local_counts.get((key, window), 0) + cost
        _local_counts[(key, window)] = count
        return count


def _count_in_postgres(db: Database, key: str, window_start: datetime, cost: int) -> int:
    stmt = (
        postgresql.insert(RateLimitCounter)
        .values(key=key, window_start=window_start, count=cost)
        .on_conflict_do_update(
            index_elements=["key", "window_start"], set_={"count": RateLimitCounter.count + cost}
        )
        .returning(RateLimitCounter.count)
    )
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        return int(conn.execute(stmt).scalar_one())


def _pseudonym(subject: str) -> str:
    """Counters never hold the e-mail address or IP address they count (a keyed hash of it instead): the
    table is shared by every workspace and outlives an erasure by a day."""
    from patronage.config import get_settings

    return hmac_sha256_hex(get_settings().secret_key, subject.encode())[:40]


def _window(limit: Limit, subject: str) -> tuple[datetime, float, int, str]:
    now = utcnow()
    seconds = int(limit.per.total_seconds())
    start_epoch = math.floor(now.timestamp() / seconds) * seconds
    return now, start_epoch, seconds, f"{limit.name}:{_pseudonym(subject)}"


def _refuse(limit: Limit, now: datetime, start_epoch: float, seconds: int) -> RateLimited:
    retry_after = max(1, int(start_epoch + seconds - now.timestamp()))
    return RateLimited(
        f"too many {limit.name.replace('_', ' ')} attempts; retry in {retry_after} s",
        retry_after=retry_after,
    )


def hit(db: Database, limit: Limit, subject: str, *, cost: int = 1) -> int:
    """Count one request for ``subject``; raise 429 with Retry-After once over the limit."""
    now, start_epoch, seconds, key = _window(limit, subject)
    if db.dialect == "postgresql":
        window_start = datetime.fromtimestamp(start_epoch, tz=now.tzinfo)
        count = _count_in_postgres(db, key, window_start, cost)
    else:
        count = _count_locally(key, start_epoch, cost)
    if count > limit.max_requests:
        raise _refuse(limit, now, start_epoch, seconds)
    return count


def check(db: Database, limit: Limit, subject: str) -> None:
    """Raise 429 if ``subject`` has used up the limit of the current window, without counting anything:
    for budgets spent only by some outcomes (a look-up that finds nothing), checked before the attempt."""
    now, start_epoch, seconds, key = _window(limit, subject)
    if db.dialect == "postgresql":
        window_start = datetime.fromtimestamp(start_epoch, tz=now.tzinfo)
        stmt = select(RateLimitCounter.count).where(RateLimitCounter.key == key,
                                                    RateLimitCounter.window_start == window_start)
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            count = int(conn.execute(stmt).scalar() or 0)
    else:
        with _local_lock:
            count = _local_counts.get((key, start_epoch), 0)
    if count >= limit.max_requests:
        raise _refuse(limit, now, start_epoch, seconds)


def reset_local() -> None:
    """Tests start from zero."""
    with _local_lock:
        _local_counts.clear()


def prune(session: Session, older_than: timedelta = timedelta(days=1)) -> None:
    session.execute(delete(RateLimitCounter).where(RateLimitCounter.window_start < utcnow() - older_than))


from patronage.kit.jobs.registry import JobContext, periodic  # noqa: E402 - after the model it prunes


@periodic("ratelimit.prune", "43 * * * *", per_workspace=False)
def prune_counters(session: Session, ctx: JobContext) -> None:
    prune(session)
