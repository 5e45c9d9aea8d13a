"""Translations: the catalogs cover every string of the console, portal and emails, and the language is
chosen per member, per workspace or from the browser."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlalchemy import update

from patronage.config import Settings
from patronage.customers.models import Customer
from patronage.kit.db import Database
from patronage.kit.jobs.models import Job
from patronage.web.i18n import LOCALE_DIR, negotiate
from patronage.workspaces.auth import MEMBER_COOKIE
from patronage.workspaces.models import Workspace
from tests.conftest import Tenant
from tests.web.conftest import Staff, make_customer, member_cookie

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]")


@lru_cache(maxsize=1)
def source_messages() -> frozenset[str]:
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return frozenset(found)


@pytest.mark.parametrize("language", ["pt", "pl", "it"])
def test_every_string_is_translated(language: str) -> None:
    wanted = source_messages()
    assert len(wanted) > 500
    with (LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=language)
    translated = {}
    for message in catalog:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"{language}: {key!r} is not translated"
        for text in strings:
            assert set(PLACEHOLDER.findall(text)) <= set(PLACEHOLDER.findall(str(message.id))), (language, key)
        translated[key] = strings
    missing = sorted(wanted - translated.keys())
    assert not missing, f"{language}: run `make translations` and translate: {missing[:10]}"


def test_negotiation_order() -> None:
    assert negotiate("it", "pt", accept_language="pl") == "it"  # the member's own choice
    assert negotiate(None, "pt-BR", accept_language="pl") == "pt"  # then the workspace's
    assert negotiate(None, None, accept_language="de-DE,pl;q=0.8") == "pl"  # then the browser's
    assert negotiate("xx", None) == "en"


def test_pages_render_in_portuguese(client: TestClient, tenant: Tenant) -> None:
    page = client.get(f"/portal/{tenant.slug}/sign-in?lang=pt")
    assert page.status_code == 200
    assert '<html lang="pt">' in page.text
    assert "Enviar-me uma ligação de acesso" in page.text
    assert "Saltar para o conteúdo" in page.text
    login = client.get("/login", headers={"Accept-Language": "pt-PT,pt;q=0.9,en;q=0.5"})
    assert "Entrar no Patronage" in login.text and "Palavra-passe" in login.text


def test_console_follows_the_browser_then_the_menu(staff: Staff) -> None:
    polish = staff.client.get("/console/customers", headers={"Accept-Language": "pl"})
    assert "Klienci" in polish.text and "Wyloguj się" in polish.text
    chosen = staff.client.post("/console/language", data={"lang": "it", "csrf_token": staff.csrf, "next": "/"},
                               follow_redirects=False)
    assert chosen.status_code == 303
    assert "Esci" in staff.client.get("/console/customers", headers={"Accept-Language": "pl"}).text


def test_portal_speaks_the_members_language(
    client: TestClient, tenant: Tenant, db: Database, settings: Settings
) -> None:
    customer_id = make_customer(db, tenant.workspace_id, "lia@example.com", external_id="c-7", locale="it",
                                first_name="Lia")
    client.cookies.set(MEMBER_COOKIE, member_cookie(db, settings, tenant.workspace_id, "lia@example.com"))
    home = client.get(f"/portal/{tenant.slug}/", headers={"Accept-Language": "en"})
    assert home.status_code == 200
    assert "Ciao Lia" in home.text and "I miei punti" in home.text
    with db.unit_of_work() as session:
        session.execute(update(Customer).where(Customer.id == customer_id).values(locale=None))
        session.execute(update(Workspace).where(Workspace.id == tenant.workspace_id).values(locale="pl"))
    assert "Cześć, Lia" in client.get(f"/portal/{tenant.slug}/").text  # the workspace's language next


def test_magic_link_email_is_branded_and_translated(
    client: TestClient, tenant: Tenant, db: Database
) -> None:
    make_customer(db, tenant.workspace_id, "rui@example.com", external_id="c-8", locale="pt", first_name="Rui")
    with db.unit_of_work() as session:
        session.execute(update(Workspace).where(Workspace.id == tenant.workspace_id).values(
            brand_primary_color="#0a7d4f", brand_logo_url="https://cdn.example.com/logo.png"))
    page = client.get(f"/portal/{tenant.slug}/sign-in")
    token = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert token
    sent = client.post(f"/portal/{tenant.slug}/sign-in",
                       data={"email": "rui@example.com", "form_token": token.group(1)})
    assert sent.status_code == 200
    with db.unit_of_work(read_only=True) as session:
        job = session.query(Job).filter(Job.task == "mail.send").one()
    assert job.payload["subject"] == "A sua ligação de acesso à Acme"
    assert "Olá Rui," in job.payload["text"]
    html = job.payload["html"]
    assert "background:#0a7d4f" in html and 'src="https://cdn.example.com/logo.png"' in html
    assert f"/portal/{tenant.slug}/auth/" in html
    # Unknown addresses get the same page and no email: no member enumeration.
    other = client.post(f"/portal/{tenant.slug}/sign-in", data={"email": "nobody@example.com",
                                                                "form_token": token.group(1)})
    assert other.status_code == 200 and "Check your email" in other.text
