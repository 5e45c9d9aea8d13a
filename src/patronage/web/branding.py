"""A workspace's brand as CSS custom properties, with text colours chosen for WCAG AA contrast. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_PRIMARY = "#3b4cca"
DEFAULT_ACCENT = "#f2a93b"
INK = "#14171f"
WHITE = "#ffffff"
AA_NORMAL_TEXT = 4.5


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def luminance(hex_colour: str) -> float:
    """Relative luminance (WCAG 2.1)."""
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_on(background: str) -> str:
    """White or near-black, whichever reads better on ``background``."""
    return WHITE if contrast(WHITE, background) >= contrast(INK, background) else INK


def _darken(hex_colour: str, factor: float) -> str:
    r, g, b = (int(int(hex_colour[i : i + 2], 16) * factor) for i in (1, 3, 5))
    return f"#{r:02x}{g:02x}{b:02x}"


def readable_on_white(colour: str) -> str:
    """``colour`` darkened until it reaches AA contrast on white (for links and outlines)."""
    result, factor = colour, 1.0
    while contrast(result, WHITE) < AA_NORMAL_TEXT and factor > 0.05:
        factor -= 0.05
        result = _darken(colour, factor)
    return result


@dataclass(frozen=True)
class Brand:
    primary: str
    accent: str
    logo_url: str | None
    name: str

    @classmethod
    def of(cls, name: str, primary: str | None, accent: str | None, logo_url: str | None) -> Brand:
        return cls(
            primary=primary if primary and HEX.match(primary) else DEFAULT_PRIMARY,
            accent=accent if accent and HEX.match(accent) else DEFAULT_ACCENT,
            logo_url=logo_url or None,
            name=name,
        )

    @property
    def on_primary(self) -> str:
        return text_on(self.primary)

    @property
    def on_accent(self) -> str:
        return text_on(self.accent)

    @property
    def primary_text(self) -> str:
        return readable_on_white(self.primary)

    def css_variables(self) -> str:
        """``:root`` custom properties; every value is a validated hex colour, safe to inline."""
        return (
            f":root{{--brand:{self.primary};--on-brand:{self.on_primary};--accent:{self.accent};"
            f"--on-accent:{self.on_accent};--brand-text:{self.primary_text}}}"
        )
