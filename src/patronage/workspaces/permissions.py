"""Roles map to permissions; API key scopes are permissions too. Pure data, no database."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    WORKSPACE_READ = "workspace:read"
    WORKSPACE_MANAGE = "workspace:manage"
    # Making someone an owner, or demoting or removing an owner: owners only.
    OWNERSHIP_MANAGE = "workspace:ownership"
    STAFF_MANAGE = "staff:manage"
    API_KEYS_MANAGE = "api_keys:manage"
    WEBHOOKS_MANAGE = "webhooks:manage"
    JOBS_MANAGE = "jobs:manage"
    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"
    CUSTOMERS_ERASE = "customers:erase"
    EVENTS_WRITE = "events:write"
    LOYALTY_READ = "loyalty:read"
    LOYALTY_WRITE = "loyalty:write"
    LOYALTY_MANAGE = "loyalty:manage"
    SEGMENTS_READ = "segments:read"
    SEGMENTS_MANAGE = "segments:manage"
    ANALYTICS_READ = "analytics:read"
    ENGAGEMENT_MANAGE = "engagement:manage"
    FEEDBACK_READ = "feedback:read"
    FEEDBACK_MANAGE = "feedback:manage"
    SUPPORT_WORK = "support:work"
    SUPPORT_MANAGE = "support:manage"


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MARKETER = "marketer"
    SUPPORT_AGENT = "support_agent"
    ANALYST = "analyst"


P = Permission
ALL = frozenset(Permission)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: ALL,
    # Admins run everything except who owns the workspace (ownership changes stay with owners).
    Role.ADMIN: ALL - {P.OWNERSHIP_MANAGE},
    Role.MARKETER: frozenset(
        {
            P.WORKSPACE_READ, P.CUSTOMERS_READ, P.CUSTOMERS_WRITE, P.LOYALTY_READ, P.LOYALTY_MANAGE,
            P.SEGMENTS_READ, P.SEGMENTS_MANAGE, P.ANALYTICS_READ, P.ENGAGEMENT_MANAGE, P.FEEDBACK_READ,
            P.FEEDBACK_MANAGE,
        }
    ),
    Role.SUPPORT_AGENT: frozenset(
        {
            P.WORKSPACE_READ, P.CUSTOMERS_READ, P.CUSTOMERS_WRITE, P.LOYALTY_READ, P.LOYALTY_WRITE,
            P.FEEDBACK_READ, P.SUPPORT_WORK,
        }
    ),
    Role.ANALYST: frozenset(
        {P.WORKSPACE_READ, P.CUSTOMERS_READ, P.LOYALTY_READ, P.SEGMENTS_READ, P.ANALYTICS_READ, P.FEEDBACK_READ}
    ),
}

# What a shop integration's key usually needs: send data in, read loyalty state, redeem for members.
DEFAULT_API_KEY_SCOPES: frozenset[Permission] = frozenset(
    {P.WORKSPACE_READ, P.CUSTOMERS_READ, P.CUSTOMERS_WRITE, P.EVENTS_WRITE, P.LOYALTY_READ, P.LOYALTY_WRITE}
)

# A signed-in customer (member portal) acts only on their own profile, through member routes.
MEMBER_PERMISSIONS: frozenset[str] = frozenset({"member:self"})


def permissions_for(role: Role | str) -> frozenset[Permission]:
    return ROLE_PERMISSIONS[Role(role)]


def can_grant(granter: frozenset[str], wanted: frozenset[str]) -> bool:
    """Nobody hands out a permission they do not hold (API key scopes, role assignment)."""
    return wanted <= granter
