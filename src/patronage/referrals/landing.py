"""What the public referral landing page (``/r/{code}``) may show, and its visit counter.

The page is public: it names the referrer by first name only and shows the welcome offer. A code of an
inactive program, or of a referrer who was erased, is treated as unknown (the visitor cannot tell the
difference). Enumerating codes is limited by the web layer's rate limits (docs/referrals.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.orm import Session

from patronage.kit.db import Database
from patronage.referrals import repository as repo
from patronage.referrals import service
from patronage.rewards.models import Reward
from patronage.rewards.rules import normalise_code
from patronage.workspaces.models import Workspace

PLAUSIBLE_CODE = re.compile(r"^[A-Za-z0-9\-_ ]{4,60}$")
MIN_CODE_LENGTH = 8  # rewards.rules.generate_code never makes shorter codes


@dataclass(frozen=True)
class Landing:
    workspace: Workspace
    code: str
    code_id: int
    referrer_first_name: str | None
    welcome_trigger: str  # signup | first_order
    welcome_points: int
    welcome_reward: str | None  # the reward's name
    min_order_amount: Decimal | None
    signup_link: str | None  # the program's sign-up URL with ref=<code>


def with_ref(url: str, code: str) -> str:
    """``url`` with ``ref=<code>`` added to its query (replacing a ``ref`` already there)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "ref"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("ref", code)])))


def first_name_only(raw: str | None) -> str | None:
    """The first word of the first name: never a surname typed into the first-name field."""
    words = (raw or "").split()
    return words[0][:40] if words else None


def plausible(raw_code: str) -> bool:
    """Whether ``raw_code`` could be a code as people type it (letters and digits, dashes and spaces)."""
    return PLAUSIBLE_CODE.fullmatch(raw_code) is not None and len(normalise_code(raw_code)) >= MIN_CODE_LENGTH


def find(session: Session, raw_code: str) -> Landing | None:
    """The landing page of ``raw_code``; None for codes that are unknown, of an inactive program, or of an
    erased referrer."""
    if not plausible(raw_code):
        return None
    row = repo.find_code(session, normalise_code(raw_code))
    if row is None:
        return None
    ws = row.workspace_id
    settings = service.program(session, ws)
    workspace = session.get(Workspace, ws)
    # Attribution follows merges, and so does the name the friend sees.
    referrer = repo.customer(session, ws, repo.survivor_of(session, ws, row.customer_id))
    if not settings.active or workspace is None or referrer is None or referrer.erased_at is not None:
        return None
    reward = session.get(Reward, settings.welcome_reward_id) if settings.welcome_reward_id else None
    if reward is not None and (reward.workspace_id != ws or not reward.active):
        reward = None
    return Landing(
        workspace=workspace, code=row.code, code_id=row.id, referrer_first_name=first_name_only(referrer.first_name),
        welcome_trigger=settings.welcome_trigger, welcome_points=settings.welcome_points,
        welcome_reward=reward.name if reward else None, min_order_amount=settings.min_order_amount,
        signup_link=with_ref(settings.signup_url, row.code) if settings.signup_url else None,
    )


def record_visit(db: Database, workspace_id: int, code_id: int) -> None:
    """Count a visit in a short transaction of its own (the page itself is served by a read-only one)."""
    with db.unit_of_work() as session:
        repo.CodeRepository(session, workspace_id).bump(code_id, clicks=1)
