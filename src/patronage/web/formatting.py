"""Numbers, money and dates as each language writes them (Babel), for templates and emails."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel import dates, numbers

Number = int | float | Decimal


@dataclass(frozen=True)
class Formatter:
    """Bound to one language and time zone; templates receive it as ``fmt``."""

    language: str
    timezone: str = "UTC"

    def number(self, value: Number | None, digits: int = 0) -> str:
        if value is None:
            return "—"
        pattern = "#,##0" if digits == 0 else "#,##0." + "0" * digits
        return numbers.format_decimal(value, format=pattern, locale=self.language)

    def compact(self, value: Number | None) -> str:
        if value is None:
            return "—"
        return numbers.format_compact_decimal(value, locale=self.language, fraction_digits=1)

    def percent(self, value: Number | None, digits: int = 1) -> str:
        if value is None:
            return "—"
        pattern = "#,##0%" if digits == 0 else "#,##0." + "0" * digits + "%"
        return numbers.format_percent(value, format=pattern, locale=self.language)

    def money(self, value: Number | None, currency: str | None) -> str:
        if value is None:
            return "—"
        if not currency:
            return self.number(value, 2)
        return numbers.format_currency(value, currency, locale=self.language)

    def date(self, value: dt.date | dt.datetime | None) -> str:
        if value is None:
            return "—"
        if isinstance(value, dt.datetime):
            value = value.astimezone(ZoneInfo(self.timezone)).date()
        return dates.format_date(value, format="medium", locale=self.language)

    def month(self, value: dt.date) -> str:
        return dates.format_skeleton("yMMM", value, locale=self.language)

    def datetime(self, value: dt.datetime | None) -> str:
        if value is None:
            return "—"
        return dates.format_datetime(value, format="short", tzinfo=ZoneInfo(self.timezone), locale=self.language)

    def iso(self, value: dt.date | dt.datetime | None) -> str:
        return "" if value is None else value.isoformat()
