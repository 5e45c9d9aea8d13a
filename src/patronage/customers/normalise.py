"""Pure normalisation of contact data: emails, phone numbers (E.164), countries, time zones, locales.

Each function returns the canonical form or raises ``ValueError`` with a message fit for a 422.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email

LOCALE = re.compile(r"^([a-zA-Z]{2,3})(?:[-_]([A-Za-z]{4}))?(?:[-_]([A-Za-z]{2}|\d{3}))?$")
COUNTRY = re.compile(r"^[A-Za-z]{2}$")
# The regions phonenumbers knows (ISO 3166-1 alpha-2 plus XK, AC, TA) and the few ISO countries
# without a telephone numbering plan of their own.
_KNOWN_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS) | {"AQ", "BV", "GS", "HM", "TF", "UM"}


def normalise_email(raw: str) -> str:
    """Validated syntax, trimmed, lower-cased (local parts are case-insensitive in practice)."""
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty")
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from exc
    return result.normalized.lower()


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    """E.164 (``+4915112345678``). Numbers without a ``+`` prefix are read in ``default_region``."""
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty")
    region = default_region.upper() if default_region else None
    if not value.startswith(("+", "00")) and region is None:
        raise ValueError("add the country code (+...) or set the customer's country")
    if value.startswith("00"):
        value = "+" + value[2:]
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(number):
        where = f" for region {region}" if region and not value.startswith("+") else ""
        raise ValueError(f"not a valid phone number{where}")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalise_country(raw: str) -> str:
    """ISO 3166-1 alpha-2, upper case."""
    value = raw.strip().upper()
    if not COUNTRY.fullmatch(value) or value not in _KNOWN_REGIONS:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code such as DE or US")
    return value


def normalise_timezone(raw: str) -> str:
    value = raw.strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}") from exc
    return value


def normalise_locale(raw: str) -> str:
    """BCP 47 language tag, canonical case: ``pt-BR``, ``zh-Hant-TW``, ``en``."""
    match = LOCALE.fullmatch(raw.strip())
    if match is None:
        raise ValueError("must be a BCP 47 language tag such as en, pt-BR or zh-Hant-TW")
    language, script, region = match.groups()
    parts = [language.lower()]
    if script:
        parts.append(script.title())
    if region:
        parts.append(region.upper())
    return "-".join(parts)


def region_of_locale(locale: str | None) -> str | None:
    """The region part of a locale (``en-GB`` -> ``GB``), if it names a known country."""
    if not locale:
        return None
    match = LOCALE.fullmatch(locale)
    if match is None or not match.group(3):
        return None
    region = match.group(3).upper()
    return region if region in _KNOWN_REGIONS else None


def normalise_identity(kind: str, raw: str, default_region: str | None = None) -> str:
    """The canonical value of an identifier of ``kind`` (email | phone | external_id | device_id)."""
    if kind == "email":
        return normalise_email(raw)
    if kind == "phone":
        return normalise_phone(raw, default_region)
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > 200:
        raise ValueError("at most 200 characters")
    return value
