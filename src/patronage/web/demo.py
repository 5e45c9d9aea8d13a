"""The last step of ``patronage demo``: a member the operator can sign in as, to try the member portal.

Sign-in is by magic link only, so the operator needs the e-mail address of a demo customer. With
``make run`` mail is not sent but logged (PATRONAGE_MAIL_BACKEND=log), so the link appears in the
server's output.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from sqlalchemy import select

from patronage.config import get_settings
from patronage.customers.models import Customer
from patronage.kit.db import Database
from patronage.workspaces.repository import get_workspace


def demo_member(db: Database, workspace_id: int) -> tuple[str, str | None] | None:
    """(email, first name) of the demo's most frequent buyer: a member with history to look at."""
    with db.unit_of_work(read_only=True) as session:
        stmt = (
            select(Customer.email, Customer.first_name)
            .where(Customer.workspace_id == workspace_id, Customer.email.is_not(None), Customer.erased_at.is_(None),
                   Customer.merged_into_id.is_(None))
            .order_by(Customer.orders_count.desc(), Customer.id)
            .limit(1)
        )
        found = session.execute(stmt).first()
    return (str(found[0]), found[1]) if found else None


def portal_member(db: Database, workspace_id: int, console: Console) -> dict[str, Any]:
    with db.unit_of_work(read_only=True) as session:
        workspace = get_workspace(session, workspace_id)
        assert workspace is not None
        slug = workspace.slug
    member = demo_member(db, workspace_id)
    if member is None:
        return {"member": None}
    email, first_name = member
    settings = get_settings()
    console.print(
        f"\n[bold]Member portal[/bold]: {settings.base_url}/portal/{slug}/\n"
        f"  sign in as {first_name or 'a demo customer'}: {email}\n"
        "  with `make run` (PATRONAGE_MAIL_BACKEND=log) the sign-in link is not\n"
        f"  e-mailed: open the /portal/{slug}/auth/... link from the server's log",
        soft_wrap=True,
    )
    return {"member": email, "portal": f"{settings.base_url}/portal/{slug}/"}
