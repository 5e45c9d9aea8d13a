"""Pure referral fraud checks. A suspicious referral is held for a person to review, never dropped.

Reasons (stable codes): ``self_referral`` (same customer), ``same_email``, ``same_phone``,
``same_address``, ``same_device``, ``same_ip`` (an identity of the referred customer matches one of the
referrer's), ``velocity_day`` / ``velocity_week`` (the referrer passed the cap), ``existing_customer``
(the referred customer had ordered before being referred).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

_GMAIL = frozenset({"gmail.com", "googlemail.com"})


def canonical_email(raw: str) -> str:
    """The mailbox behind an address: lower case, no ``+tag``; Gmail ignores dots in the local part."""
    value = raw.strip().lower()
    local, _, domain = value.rpartition("@")
    if not local:
        return value
    local = local.split("+", 1)[0]
    if domain in _GMAIL:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def canonical_phone(raw: str) -> str:
    """Digits only (E.164 without the plus): formatting never hides a match."""
    return re.sub(r"\D", "", raw)


def canonical_address(raw: str) -> str:
    """Accents, case (ß = ss), punctuation and spacing removed: "Rue de l'Église 5" == "rue de l eglise 5"."""
    text = unicodedata.normalize("NFKD", raw.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


@dataclass(frozen=True)
class Signals:
    """What identifies a person: canonical forms only (build with ``Signals.of``)."""

    emails: frozenset[str] = field(default_factory=frozenset)
    phones: frozenset[str] = field(default_factory=frozenset)
    addresses: frozenset[str] = field(default_factory=frozenset)
    devices: frozenset[str] = field(default_factory=frozenset)
    ips: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(
        cls, *, emails: Iterable[str | None] = (), phones: Iterable[str | None] = (),
        addresses: Iterable[str | None] = (), devices: Iterable[str | None] = (), ips: Iterable[str | None] = (),
    ) -> Signals:
        def clean(values: Iterable[str | None], canon: object) -> frozenset[str]:
            out = {canon(v) if callable(canon) else v.strip() for v in values if v and v.strip()}
            return frozenset(v for v in out if v)

        return cls(clean(emails, canonical_email), clean(phones, canonical_phone),
                   clean(addresses, canonical_address), clean(devices, None), clean(ips, None))


def shared_identities(referrer: Signals, referred: Signals) -> list[str]:
    """Reasons for every kind of identity the two customers share."""
    pairs = (
        ("same_email", referrer.emails, referred.emails),
        ("same_phone", referrer.phones, referred.phones),
        ("same_address", referrer.addresses, referred.addresses),
        ("same_device", referrer.devices, referred.devices),
        ("same_ip", referrer.ips, referred.ips),
    )
    return [reason for reason, a, b in pairs if a & b]


def velocity_reasons(last_day: int, last_week: int, *, max_per_day: int | None, max_per_week: int | None) -> list[str]:
    """``last_day`` / ``last_week``: the referrer's referrals already made in those windows."""
    reasons = []
    if max_per_day is not None and last_day >= max_per_day:
        reasons.append("velocity_day")
    if max_per_week is not None and last_week >= max_per_week:
        reasons.append("velocity_week")
    return reasons


@dataclass(frozen=True)
class Assessment:
    reasons: tuple[str, ...]

    @property
    def hold(self) -> bool:
        return bool(self.reasons)


def assess(
    *, referrer_id: int, referred_id: int, referrer: Signals, referred: Signals, last_day: int, last_week: int,
    max_per_day: int | None, max_per_week: int | None, referred_had_orders: bool, hold_existing: bool,
) -> Assessment:
    reasons: list[str] = []
    if referrer_id == referred_id:
        reasons.append("self_referral")
    reasons += shared_identities(referrer, referred)
    reasons += velocity_reasons(last_day, last_week, max_per_day=max_per_day, max_per_week=max_per_week)
    if hold_existing and referred_had_orders:
        reasons.append("existing_customer")
    return Assessment(tuple(reasons))
