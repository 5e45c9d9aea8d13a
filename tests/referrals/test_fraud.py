"""Pure referral fraud checks."""

from __future__ import annotations

from patronage.referrals.fraud import (
    Signals,
    assess,
    canonical_address,
    canonical_email,
    canonical_phone,
    shared_identities,
    velocity_reasons,
)


def test_canonical_forms() -> None:
    assert canonical_email(" Jo.Hn+promo@GoogleMail.com ") == "john@gmail.com"
    assert canonical_email("jo.hn+x@example.com") == "jo.hn@example.com"
    assert canonical_phone("+49 (151) 123-45") == "4915112345"
    assert canonical_address("Rue de l'Église 5,  75001 Paris") == canonical_address("rue de l eglise 5 75001 PARIS")
    assert canonical_address("Hauptstraße 1") == canonical_address("HAUPTSTRASSE 1")


def test_signals_ignore_blanks() -> None:
    s = Signals.of(emails=["", None, " a@b.c "], ips=[" ", "1.2.3.4"], devices=[None])
    assert s.emails == frozenset({"a@b.c"}) and s.ips == frozenset({"1.2.3.4"}) and not s.devices


def test_shared_identities_name_every_match() -> None:
    referrer = Signals.of(emails=["ann@gmail.com"], phones=["+4915112345"], devices=["dev-1"], ips=["9.9.9.9"],
                          addresses=["Main St 1"])
    alias = Signals.of(emails=["a.n.n+2@gmail.com"], phones=["0049 151 12345".replace("0049", "+49")],
                       addresses=["main st. 1"], devices=["dev-2"], ips=["9.9.9.9"])
    assert shared_identities(referrer, alias) == ["same_email", "same_phone", "same_address", "same_ip"]
    stranger = Signals.of(emails=["bob@example.com"], ips=["8.8.8.8"])
    assert shared_identities(referrer, stranger) == []


def test_velocity_caps() -> None:
    assert velocity_reasons(4, 10, max_per_day=5, max_per_week=20) == []
    assert velocity_reasons(5, 10, max_per_day=5, max_per_week=20) == ["velocity_day"]
    assert velocity_reasons(0, 20, max_per_day=5, max_per_week=20) == ["velocity_week"]
    assert velocity_reasons(100, 100, max_per_day=None, max_per_week=None) == []


def test_assess_holds_with_all_reasons() -> None:
    same = Signals.of(emails=["x@y.z"])
    clean = assess(referrer_id=1, referred_id=2, referrer=same, referred=Signals(), last_day=0, last_week=0,
                   max_per_day=5, max_per_week=20, referred_had_orders=False, hold_existing=True)
    assert not clean.hold and clean.reasons == ()
    bad = assess(referrer_id=1, referred_id=2, referrer=same, referred=same, last_day=5, last_week=5,
                 max_per_day=5, max_per_week=20, referred_had_orders=True, hold_existing=True)
    assert bad.hold and bad.reasons == ("same_email", "velocity_day", "existing_customer")
    existing_ok = assess(referrer_id=1, referred_id=2, referrer=Signals(), referred=Signals(), last_day=0,
                         last_week=0, max_per_day=None, max_per_week=None, referred_had_orders=True,
                         hold_existing=False)
    assert not existing_ok.hold
    assert assess(referrer_id=3, referred_id=3, referrer=Signals(), referred=Signals(), last_day=0, last_week=0,
                  max_per_day=None, max_per_week=None, referred_had_orders=False,
                  hold_existing=False).reasons == ("self_referral",)
