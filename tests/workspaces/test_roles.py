"""Roles and permissions: the matrix, what each role may do through the API, and ownership rules."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.conftest import Tenant
from tests.kit.helpers import PASSWORD, add_user, count, login

from patronage.kit.db import Database
from patronage.workspaces.models import Membership
from patronage.workspaces.permissions import (
    ALL,
    DEFAULT_API_KEY_SCOPES,
    ROLE_PERMISSIONS,
    Permission,
    Role,
    can_grant,
    permissions_for,
)

P = Permission

# What each role may do, spelled out: a change to ROLE_PERMISSIONS must change this table too.
EXPECTED: dict[Role, set[Permission]] = {
    Role.OWNER: set(ALL),
    Role.ADMIN: set(ALL) - {P.OWNERSHIP_MANAGE},
    Role.MARKETER: {
        P.WORKSPACE_READ, P.CUSTOMERS_READ, P.CUSTOMERS_WRITE, P.LOYALTY_READ, P.LOYALTY_MANAGE, P.SEGMENTS_READ,
        P.SEGMENTS_MANAGE, P.ANALYTICS_READ, P.ENGAGEMENT_MANAGE, P.FEEDBACK_READ, P.FEEDBACK_MANAGE,
    },
    Role.SUPPORT_AGENT: {
        P.WORKSPACE_READ, P.CUSTOMERS_READ, P.CUSTOMERS_WRITE, P.LOYALTY_READ, P.LOYALTY_WRITE, P.FEEDBACK_READ,
        P.SUPPORT_WORK,
    },
    Role.ANALYST: {P.WORKSPACE_READ, P.CUSTOMERS_READ, P.LOYALTY_READ, P.SEGMENTS_READ, P.ANALYTICS_READ,
                   P.FEEDBACK_READ},
}


@pytest.mark.parametrize("role", list(Role))
def test_role_permission_matrix(role: Role) -> None:
    assert set(ROLE_PERMISSIONS[role]) == EXPECTED[role]
    assert permissions_for(role.value) == ROLE_PERMISSIONS[role]


def test_matrix_invariants() -> None:
    assert set(ROLE_PERMISSIONS) == set(Role)
    for role, granted in ROLE_PERMISSIONS.items():
        assert P.WORKSPACE_READ in granted, role
        assert granted <= ROLE_PERMISSIONS[Role.OWNER]
    # Only owners touch ownership; only owners and admins manage people, keys and the workspace.
    assert [r for r in Role if P.OWNERSHIP_MANAGE in ROLE_PERMISSIONS[r]] == [Role.OWNER]
    for sensitive in (P.STAFF_MANAGE, P.API_KEYS_MANAGE, P.WORKSPACE_MANAGE, P.CUSTOMERS_ERASE, P.WEBHOOKS_MANAGE):
        assert {r for r in Role if sensitive in ROLE_PERMISSIONS[r]} == {Role.OWNER, Role.ADMIN}, sensitive
    # The analyst only reads.
    assert all(p.value.endswith(":read") for p in ROLE_PERMISSIONS[Role.ANALYST])
    # Nobody grants what they do not hold.
    assert can_grant(frozenset({"a", "b"}), frozenset({"a"}))
    assert not can_grant(frozenset({"a"}), frozenset({"a", "b"}))
    assert ROLE_PERMISSIONS[Role.ADMIN] >= DEFAULT_API_KEY_SCOPES
    assert not can_grant(frozenset(ROLE_PERMISSIONS[Role.ADMIN]), frozenset(ROLE_PERMISSIONS[Role.OWNER]))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("role", [Role.ADMIN, Role.MARKETER, Role.SUPPORT_AGENT, Role.ANALYST])
def test_each_role_through_the_api(client: TestClient, db: Database, tenant: Tenant, role: Role) -> None:
    email = f"{role.value}@acme.test"
    add_user(db, tenant.workspace_id, email, role)
    csrf = {"X-CSRF-Token": login(client, email, PASSWORD)}
    granted = ROLE_PERMISSIONS[role]
    checks = [
        ("GET", "/api/v1/workspace", None, P.WORKSPACE_READ),
        ("PATCH", "/api/v1/workspace", {"name": "Acme"}, P.WORKSPACE_MANAGE),
        ("GET", "/api/v1/staff", None, P.WORKSPACE_READ),
        ("GET", "/api/v1/api-keys", None, P.API_KEYS_MANAGE),
        ("POST", "/api/v1/api-keys", {"name": "k", "scopes": ["workspace:read"]}, P.API_KEYS_MANAGE),
        ("POST", "/api/v1/staff", {"email": "new@acme.example", "password": PASSWORD, "role": "analyst"},
         P.STAFF_MANAGE),
    ]
    for method, path, body, permission in checks:
        response = client.request(method, path, json=body, headers=csrf)
        if permission in granted:
            assert response.status_code in (200, 201), (role, method, path, response.text)
        else:
            assert response.status_code == 403, (role, method, path, response.text)
            assert response.json()["code"] == "forbidden"


def _role_of(client: TestClient, headers: dict[str, str], user_id: int) -> str:
    staff = client.get("/api/v1/staff", headers=headers).json()
    return next(s["role"] for s in staff if s["user_id"] == user_id)


def test_the_last_owner_cannot_be_demoted_or_removed(client: TestClient, db: Database, tenant: Tenant) -> None:
    demote = client.patch(f"/api/v1/staff/{tenant.owner_id}", json={"role": "admin"}, headers=tenant.headers)
    assert demote.status_code == 409
    assert demote.json()["reason"] == "last_owner"
    remove = client.delete(f"/api/v1/staff/{tenant.owner_id}", headers=tenant.headers)
    assert remove.status_code == 409
    assert _role_of(client, tenant.headers, tenant.owner_id) == "owner"

    # With a second owner, one of them may step down.
    second = add_user(db, tenant.workspace_id, "second@acme.test", Role.OWNER)
    step_down = client.patch(f"/api/v1/staff/{tenant.owner_id}", json={"role": "admin"}, headers=tenant.headers)
    assert step_down.status_code == 200
    assert client.delete(f"/api/v1/staff/{second}", headers=tenant.headers).status_code == 409  # now the last
    assert count(db, Membership, Membership.workspace_id == tenant.workspace_id) == 2


def test_only_owners_touch_ownership(client: TestClient, db: Database, tenant: Tenant) -> None:
    admin = add_user(db, tenant.workspace_id, "admin@acme.test", Role.ADMIN)
    analyst = add_user(db, tenant.workspace_id, "analyst@acme.test", Role.ANALYST)
    second_owner = add_user(db, tenant.workspace_id, "owner2@acme.test", Role.OWNER)
    csrf = {"X-CSRF-Token": login(client, "admin@acme.test", PASSWORD)}

    # An admin may not make owners, demote or remove them (several owners: the last-owner rule is moot).
    for method, path, body in [
        ("PATCH", f"/api/v1/staff/{analyst}", {"role": "owner"}),
        ("PATCH", f"/api/v1/staff/{second_owner}", {"role": "analyst"}),
        ("DELETE", f"/api/v1/staff/{second_owner}", None),
        ("POST", "/api/v1/staff", {"email": "boss@acme.example", "password": PASSWORD, "role": "owner"}),
    ]:
        response = client.request(method, path, json=body, headers=csrf)
        assert response.status_code == 403, (method, path, response.text)
    # ...but runs everyone else.
    assert client.patch(f"/api/v1/staff/{analyst}", json={"role": "marketer"}, headers=csrf).status_code == 200
    assert client.delete(f"/api/v1/staff/{analyst}", headers=csrf).status_code == 204

    # An owner may do all of it.
    owner = tenant.headers
    assert client.patch(f"/api/v1/staff/{admin}", json={"role": "owner"}, headers=owner).status_code == 200
    assert client.patch(f"/api/v1/staff/{second_owner}", json={"role": "admin"}, headers=owner).status_code == 200
    assert client.delete(f"/api/v1/staff/{second_owner}", headers=owner).status_code == 204
    assert _role_of(client, owner, admin) == "owner"


def test_staff_changes_are_audited_and_listed(client: TestClient, tenant: Tenant) -> None:
    added = client.post(
        "/api/v1/staff",
        json={"email": "New.Person@Acme.example", "name": "New", "password": PASSWORD, "role": "support_agent"},
        headers=tenant.headers,
    )
    assert added.status_code == 201
    assert added.json()["email"] == "new.person@acme.example"
    again = client.post(
        "/api/v1/staff",
        json={"email": "new.person@acme.example", "password": PASSWORD, "role": "analyst"},
        headers=tenant.headers,
    )
    assert again.status_code == 409
    unknown_role = client.post(
        "/api/v1/staff", json={"email": "x@acme.example", "password": PASSWORD, "role": "god"}, headers=tenant.headers
    )
    assert unknown_role.status_code == 422
    assert unknown_role.json()["errors"][0]["field"] == "role"
