"""Who may act on one customer's loyalty: staff/keys holding a permission, or the customer themself.

Member principals (the portal, shops' apps) carry only ``member:self`` and may act on their own
customer id; anyone else needs the staff permission. Another customer's id answers 404, so a member
cannot probe which ids exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session

from patronage.kit.errors import Forbidden, NotFound
from patronage.kit.http.route import request_session
from patronage.rewards.repository import customer_exists
from patronage.workspaces.auth import Principal, authenticate

MEMBER_SELF = "member:self"


def customer_access(permission: str) -> Callable[..., Principal]:
    def dependency(
        customer_id: int, principal: Annotated[Principal, Depends(authenticate)],
        session: Annotated[Session, Depends(request_session)],
    ) -> Principal:
        if principal.kind == "member":
            if MEMBER_SELF not in principal.permissions or principal.subject_id != customer_id:
                raise NotFound(f"customer {customer_id} not found")
            return principal
        if permission not in principal.permissions:
            raise Forbidden(f"this action needs the {permission!r} permission")
        # Staff: another workspace's (or no) customer is a 404 on every route, lists included.
        if not customer_exists(session, principal.workspace_id, customer_id):
            raise NotFound(f"customer {customer_id} not found")
        return principal

    dependency.required_permission = permission  # type: ignore[attr-defined]
    return dependency
