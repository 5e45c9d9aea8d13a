"""Consent rules, pure: which decision is current, and may we message this customer?

``can_message`` is THE gate: every domain that sends anything to a customer (journeys, campaigns,
newsletters, transactional notices with marketing content, surveys) must call it with the customer's
current consents and send nothing when it answers False.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, TypeVar


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    WHATSAPP = "whatsapp"
    WEBHOOK = "webhook"
    IN_APP = "in_app"
    PHONE = "phone"  # calls
    POST = "post"  # direct mail


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"
    PENDING = "pending"  # double opt-in: asked, waiting for the customer's confirmation


class ConsentLike(Protocol):
    """What ``can_message`` needs of a consent: a state row, an evidence row or a plain dataclass."""

    @property
    def channel(self) -> str: ...

    @property
    def topic(self) -> str | None: ...

    @property
    def status(self) -> str: ...


class Decision(Protocol):
    @property
    def channel(self) -> str: ...

    @property
    def topic(self) -> str | None: ...

    @property
    def status(self) -> str: ...

    @property
    def occurred_at(self) -> datetime: ...

    @property
    def id(self) -> int: ...


D = TypeVar("D", bound=Decision)


@dataclass(frozen=True)
class Consent:
    channel: str
    topic: str | None
    status: str


def _key(channel: str, topic: str | None) -> tuple[str, str]:
    return (str(channel), topic or "")


def can_message(consents: Iterable[ConsentLike], channel: str, topic: str | None = None) -> bool:
    """True only with a matching *granted* consent.

    - ``topic`` None: the channel-wide consent for ``channel`` must be granted.
    - ``topic`` given: the consent for exactly (``channel``, ``topic``) must be granted, and the
      channel-wide consent must not be withdrawn or pending (a channel-wide opt-out beats every topic).
    Anything pending (double opt-in not yet confirmed), withdrawn or missing means no.
    """
    states: dict[tuple[str, str], str] = {}
    for consent in consents:
        states[_key(consent.channel, consent.topic)] = str(consent.status)
    channel_wide = states.get(_key(channel, None))
    if not topic:
        return channel_wide == ConsentStatus.GRANTED
    if channel_wide in (ConsentStatus.WITHDRAWN, ConsentStatus.PENDING):
        return False
    return states.get(_key(channel, topic)) == ConsentStatus.GRANTED


def supersedes(candidate: Decision, current: Decision | None) -> bool:
    """Whether ``candidate`` becomes the current decision instead of ``current``.

    The later decision wins (by decision time, then by recording order), except that a pending
    double opt-in request never replaces a grant: asking again does not take away what was given.
    """
    if current is None:
        return True
    if candidate.status == ConsentStatus.PENDING and current.status == ConsentStatus.GRANTED:
        return False
    return (candidate.occurred_at, candidate.id) > (current.occurred_at, current.id)


def current_decisions(evidence: Iterable[D]) -> dict[tuple[str, str], D]:
    """The current decision per (channel, topic): the evidence replayed in decision order."""
    latest: dict[tuple[str, str], D] = {}
    for row in sorted(evidence, key=lambda r: (r.occurred_at, r.id)):
        key = _key(row.channel, row.topic)
        if supersedes(row, latest.get(key)):
            latest[key] = row
    return latest
