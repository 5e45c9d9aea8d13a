"""The member sign-in email: branded with the workspace's logo and colours, in the member's language.

Rendered from sandboxed Jinja templates (templates/email/) with every style inline, as mail clients
ignore style sheets. Passed to ``members.service.request_magic_link`` as its ``compose`` function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy.orm import Session

from patronage.config import get_settings
from patronage.customers.repository import CustomerRepository
from patronage.web.branding import Brand
from patronage.web.i18n import negotiate, translator
from patronage.workspaces.models import Workspace

EMAIL_TEMPLATES = Path(__file__).resolve().parent / "templates" / "email"
mail_env = SandboxedEnvironment(
    loader=FileSystemLoader(EMAIL_TEMPLATES), autoescape=select_autoescape(["html"]), trim_blocks=True,
    lstrip_blocks=True,
)


def absolute_logo(logo_url: str | None, base_url: str) -> str | None:
    """Mail clients need absolute https URLs; a logo served by Patronage (/static/...) gets the base URL."""
    if not logo_url:
        return None
    if logo_url.startswith("/"):
        return base_url.rstrip("/") + logo_url
    return logo_url if logo_url.startswith("https://") else None


def magic_link_mail(
    session: Session, workspace: Workspace, customer_id: int, link: str, minutes: int
) -> tuple[str, str, str | None]:
    customer = CustomerRepository(session, workspace.id).get(customer_id)
    language = negotiate(customer.locale if customer else None, workspace.locale)
    tr = translator(language)
    brand = Brand.of(workspace.name, workspace.brand_primary_color, workspace.brand_accent_color,
                     workspace.brand_logo_url)
    subject = tr.gettext("Your sign-in link for %(shop)s") % {"shop": workspace.name}
    context: dict[str, Any] = {
        "_": tr.gettext, "lang": language, "brand": brand, "link": link, "minutes": minutes, "subject": subject,
        "first_name": customer.first_name if customer else None,
        "logo": absolute_logo(brand.logo_url, get_settings().base_url),
    }
    text = mail_env.get_template("magic_link.txt").render(context)
    html = mail_env.get_template("magic_link.html").render(context)
    return subject, text, html
