"""Pure rules of the customers domain: no database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from patronage.customers.attributes import AttributeSpec, AttributeType, check_definition, validate_attributes
from patronage.customers.consent_rules import Consent, can_message, current_decisions
from patronage.customers.lifecycle_rules import Activity, LifecycleDefinitions, Stage, compute_stage
from patronage.customers.normalise import (
    normalise_country,
    normalise_email,
    normalise_locale,
    normalise_phone,
    normalise_timezone,
    region_of_locale,
)
from patronage.kit.errors import ValidationFailed

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
RULES = LifecycleDefinitions()


# ---- normalisation ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [("  Ann.Lee@Example.COM ", "ann.lee@example.com"), ("bob+tag@sub.example.org", "bob+tag@sub.example.org")],
)
def test_email_is_validated_and_lower_cased(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize("raw", ["", "no-at-sign", "a@", "Ann <ann@example.com>", "a b@example.com"])
def test_bad_emails_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match=r"valid email|empty"):
        normalise_email(raw)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+49 151 23456789", None, "+4915123456789"),
        ("0151 23456789", "DE", "+4915123456789"),
        ("(201) 555-0123", "US", "+12015550123"),
        ("0044 20 7946 0018", None, "+442079460018"),
        ("+1 201-555-0123", "DE", "+12015550123"),  # an explicit country code wins over the region
    ],
)
def test_phone_numbers_become_e164(raw: str, region: str | None, expected: str) -> None:
    assert normalise_phone(raw, region) == expected


def test_national_phone_without_region_or_invalid_number_is_refused() -> None:
    with pytest.raises(ValueError, match="country code"):
        normalise_phone("0151 23456789", None)
    with pytest.raises(ValueError, match="not a valid phone number"):
        normalise_phone("12", "DE")
    with pytest.raises(ValueError, match="not a phone number"):
        normalise_phone("+abc", None)


def test_country_timezone_locale() -> None:
    assert normalise_country(" de ") == "DE"
    assert normalise_country("AQ") == "AQ"
    with pytest.raises(ValueError, match="ISO 3166"):
        normalise_country("XX")
    assert normalise_timezone("Europe/Berlin") == "Europe/Berlin"
    with pytest.raises(ValueError, match="IANA"):
        normalise_timezone("Mars/Olympus")
    assert normalise_locale("pt_br") == "pt-BR"
    assert normalise_locale("zh-hant-tw") == "zh-Hant-TW"
    with pytest.raises(ValueError, match="BCP 47"):
        normalise_locale("english")
    assert region_of_locale("en-GB") == "GB"
    assert region_of_locale("en") is None


# ---- custom attributes -----------------------------------------------------------------------------
SPECS = {
    "plan": AttributeSpec("plan", AttributeType.ENUM, ("free", "pro")),
    "score": AttributeSpec("score", AttributeType.NUMBER),
    "vip": AttributeSpec("vip", AttributeType.BOOLEAN),
    "since": AttributeSpec("since", AttributeType.DATE),
    "nickname": AttributeSpec("nickname", AttributeType.STRING),
    "store": AttributeSpec("store", AttributeType.STRING, required=True),
}


def test_valid_attributes_are_normalised_and_merged() -> None:
    result = validate_attributes(
        SPECS, {"plan": "pro", "score": 4.5, "vip": False, "since": "2024-02-29", "nickname": None},
        {"nickname": "old", "store": "berlin"}, creating=False,
    )
    assert result == {"plan": "pro", "score": 4.5, "vip": False, "since": "2024-02-29", "store": "berlin"}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"plan": "gold"}, "attributes.plan", "one of free, pro"),
        ({"score": "7"}, "attributes.score", "number"),
        ({"score": True}, "attributes.score", "number"),
        ({"score": float("nan")}, "attributes.score", "finite"),
        ({"vip": "yes"}, "attributes.vip", "true or false"),
        ({"since": "2024-02-30"}, "attributes.since", "YYYY-MM-DD"),
        ({"nickname": 3}, "attributes.nickname", "string"),
        ({"colour": "red"}, "attributes.colour", "no such attribute"),
        ({"store": None}, "attributes.store", "cannot be removed"),
    ],
)
def test_bad_attributes_name_the_field(changes: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        validate_attributes(SPECS, changes, {"store": "berlin"}, creating=False)
    errors = info.value.extra["errors"]
    assert errors[0]["field"] == field
    assert message in errors[0]["message"]


def test_required_attribute_is_needed_on_create_only() -> None:
    with pytest.raises(ValidationFailed) as info:
        validate_attributes(SPECS, {"plan": "free"}, {}, creating=True)
    assert [e["field"] for e in info.value.extra["errors"]] == ["attributes.store"]
    assert validate_attributes(SPECS, {"plan": "free"}, {}, creating=False) == {"plan": "free"}


def test_attribute_definitions_check_enum_values() -> None:
    assert check_definition(AttributeType.ENUM, [" a ", "b"]) == ["a", "b"]
    for bad in ([], ["a", "a"], [""]):
        with pytest.raises(ValueError, match=r"enum|distinct"):
            check_definition(AttributeType.ENUM, bad)
    with pytest.raises(ValueError, match="only enum"):
        check_definition(AttributeType.STRING, ["x"])


# ---- consent ---------------------------------------------------------------------------------------
def test_can_message_needs_a_matching_grant() -> None:
    assert not can_message([], "email")
    granted = [Consent("email", None, "granted")]
    assert can_message(granted, "email")
    assert not can_message(granted, "sms")
    assert not can_message(granted, "email", "newsletter")  # a topic needs its own grant
    assert not can_message([Consent("email", None, "pending")], "email")
    assert not can_message([Consent("email", None, "withdrawn")], "email")


def test_topic_grant_and_channel_wide_opt_out() -> None:
    topic_only = [Consent("email", "newsletter", "granted")]
    assert can_message(topic_only, "email", "newsletter")
    assert not can_message(topic_only, "email")  # a topic grant is not a channel-wide grant
    assert not can_message(topic_only, "email", "offers")
    opted_out = [*topic_only, Consent("email", None, "withdrawn")]
    assert not can_message(opted_out, "email", "newsletter")  # channel-wide withdrawal beats topics
    assert not can_message([Consent("email", "newsletter", "withdrawn"), Consent("email", None, "granted")],
                           "email", "newsletter")


@dataclass
class Row:
    id: int
    channel: str
    topic: str
    status: str
    occurred_at: datetime


def test_current_decision_is_the_latest_by_decision_time_whatever_the_arrival_order() -> None:
    t = NOW
    rows = [
        Row(3, "email", "", "withdrawn", t - timedelta(days=5)),  # recorded late, decided early
        Row(1, "email", "", "granted", t - timedelta(days=10)),
        Row(2, "email", "", "granted", t - timedelta(days=1)),
        Row(4, "sms", "", "granted", t - timedelta(days=1)),
    ]
    current = current_decisions(rows)
    assert current[("email", "")].id == 2
    assert current[("sms", "")].id == 4
    assert current_decisions(list(reversed(rows)))[("email", "")].id == 2


def test_pending_request_never_replaces_a_grant() -> None:
    t = NOW
    granted = Row(1, "email", "", "granted", t - timedelta(days=2))
    pending = Row(2, "email", "", "pending", t - timedelta(days=1))
    assert current_decisions([pending, granted])[("email", "")].status == "granted"
    withdrawn = Row(3, "email", "", "withdrawn", t - timedelta(hours=12))
    pending_again = Row(4, "email", "", "pending", t - timedelta(hours=1))
    assert current_decisions([granted, withdrawn, pending_again])[("email", "")].status == "pending"


# ---- lifecycle -------------------------------------------------------------------------------------
def activity(orders: int, first_days_ago: float | None, last_days_ago: float | None, spent: str = "100",
             signals: int = 0) -> Activity:
    first = NOW - timedelta(days=first_days_ago) if first_days_ago is not None else None
    last = NOW - timedelta(days=last_days_ago) if last_days_ago is not None else None
    return Activity(orders, Decimal(spent), first, last, signals)


@pytest.mark.parametrize(
    ("act", "stage"),
    [
        (activity(0, None, None, "0"), Stage.PROSPECT),
        (activity(1, 10, 10), Stage.NEW),
        (activity(1, 45, 45), Stage.ACTIVE),  # past the new window, not yet at risk
        (activity(1, 91, 91), Stage.AT_RISK),  # single order: fixed 90 days
        (activity(1, 181, 181), Stage.LAPSED),  # single order: fixed 180 days
        (activity(3, 60, 5), Stage.ACTIVE),  # rhythm 27.5 days
        (activity(3, 100, 61), Stage.AT_RISK),  # rhythm 19.5: 61 > 2 x 19.5
        (activity(3, 180, 121), Stage.LAPSED),  # rhythm 29.5: 121 > 4 x 29.5
        (activity(5, 100, 3), Stage.LOYAL),
        (activity(5, 100, 3, signals=1), Stage.ADVOCATE),
        (activity(2, 15, 15), Stage.AT_RISK),  # two orders the same day: rhythm floored to 7, 15 > 14
        (activity(2, 5, 5), Stage.ACTIVE),
    ],
)
def test_stages(act: Activity, stage: Stage) -> None:
    assert compute_stage(act, RULES, NOW).stage == stage


def test_same_idle_time_means_different_things_for_different_rhythms() -> None:
    weekly = activity(9, 56, 20)  # rhythm 7 days: 20 > 2 x 7
    yearly = activity(3, 730, 20)  # rhythm 365 days
    assert compute_stage(weekly, RULES, NOW).stage == Stage.AT_RISK
    assert compute_stage(yearly, RULES, NOW).stage == Stage.ACTIVE


def test_reason_explains_the_thresholds() -> None:
    decision = compute_stage(activity(3, 100, 61), RULES, NOW)
    assert decision.reason["rhythm_days"] == pytest.approx(19.5)
    assert decision.reason["at_risk_after_days"] == pytest.approx(39.0)
    assert decision.reason["lapsed_after_days"] == pytest.approx(78.0)
    assert decision.reason["days_since_last_order"] == pytest.approx(61.0)


def test_definitions_are_tunable_and_checked() -> None:
    rules = LifecycleDefinitions(loyal_min_orders=3, loyal_min_spent=Decimal("500"), new_window_days=60)
    assert compute_stage(activity(2, 20, 10, spent="600"), rules, NOW).stage == Stage.LOYAL
    assert compute_stage(activity(1, 45, 45), rules, NOW).stage == Stage.NEW
    with pytest.raises(ValidationError, match="lapsed_factor"):
        LifecycleDefinitions(at_risk_factor=3, lapsed_factor=2)
    with pytest.raises(ValidationError, match="single_order_lapsed_days"):
        LifecycleDefinitions(single_order_at_risk_days=100, single_order_lapsed_days=50)
    with pytest.raises(ValidationError):
        LifecycleDefinitions(unknown=1)  # type: ignore[call-arg]
