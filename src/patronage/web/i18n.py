"""Translations for the console, portal and emails (gettext catalogs managed with Babel).

Catalogs live in ``web/locale/<lang>/LC_MESSAGES/messages.po`` and are compiled in memory at first
use, so there is no build step. Templates call ``_("…")``/``ngettext`` passed in their context, which
keeps one shared Jinja environment safe across threads serving different languages.

Extract and update the catalogs with ``make translations`` (pybabel, see babel.cfg).
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
SUPPORTED = ("en", "pt", "pl", "it")
DEFAULT = "en"
# Each language named in itself, for language pickers.
LANGUAGE_NAMES = {"en": "English", "pt": "Português", "pl": "Polski", "it": "Italiano"}


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "translate later"
    """Mark a module-level string for extraction; translate it where it is shown."""
    return message


@lru_cache(maxsize=len(SUPPORTED))
def translations(language: str) -> gettext.NullTranslations:
    po = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == DEFAULT or not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def supported(candidate: str | None) -> str | None:
    """The supported base language of a tag such as ``pt-BR``, or None."""
    if not candidate:
        return None
    base = candidate.replace("_", "-").split("-")[0].strip().lower()
    return base if base in SUPPORTED else None


def negotiate(*candidates: str | None, accept_language: str | None = None) -> str:
    """First supported language among explicit choices (member, workspace), then the browser's."""
    for candidate in candidates:
        found = supported(candidate)
        if found:
            return found
    for part in (accept_language or "").split(","):
        found = supported(part.split(";")[0])
        if found:
            return found
    return DEFAULT


@dataclass(frozen=True)
class Translator:
    """One language's gettext functions: what templates receive as ``_`` and ``ngettext``."""

    language: str
    gettext: Callable[[str], str]
    ngettext: Callable[[str, str, int], str]


@lru_cache(maxsize=len(SUPPORTED))
def translator(language: str) -> Translator:
    t = translations(language if language in SUPPORTED else DEFAULT)
    return Translator(language, t.gettext, t.ngettext)
