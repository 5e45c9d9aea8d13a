"""The customer timeline, and GDPR export and erasure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from patronage.customers import gdpr, timeline
from patronage.customers.timeline import TimelineItem, register_source
from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.models import Base
from tests.conftest import Tenant
from tests.customers.conftest import API, add_event, add_order, add_return, create_customer

T0 = datetime(2025, 3, 1, 9, tzinfo=UTC)


@pytest.fixture
def spy_source() -> Iterator[list[tuple[Any, ...]]]:
    calls: list[tuple[Any, ...]] = []

    def points(session: Any, workspace_id: int, customer_id: int, before: Any, limit: int) -> list[TimelineItem]:
        calls.append((workspace_id, customer_id, before, limit))
        items = [TimelineItem(at=T0 + timedelta(hours=h), kind="points", id=h, title=f"+{h} points")
                 for h in (5, 1)]
        return [i for i in items if before is None or i.key < before][:limit]

    register_source("test-points", points)
    register_source("test-broken", lambda session, workspace_id: [])  # type: ignore[arg-type,misc]
    yield calls
    timeline._SOURCES.pop("test-points", None)
    assert "test-broken" not in timeline.sources()


def test_timeline_merges_every_source_newest_first(
    client: TestClient, tenant: Tenant, db: Database, spy_source: list[tuple[Any, ...]]
) -> None:
    h = tenant.headers
    ws = tenant.workspace_id
    clock.freeze(T0)
    cid = create_customer(client, tenant, external_id="t", email="t@example.com")["id"]
    clock.unfreeze()
    at = [T0 + timedelta(hours=i) for i in range(8)]
    order = add_order(db, ws, cid, "o-1", "25.00", at[1])
    add_order(db, ws, cid, "o-2", "30.00", at[6])
    add_return(db, ws, order, "r-1", "5.00", at[3])
    add_event(db, ws, cid, "e-1", "page_view", at[3])  # same instant as the return
    add_event(db, ws, cid, "e-2", "app_open", at[7], {"screen": "home"})
    consent = {"channel": "push", "status": "granted", "source": "app", "occurred_at": at[2].isoformat()}
    assert client.post(f"{API}/customers/{cid}/consents", json=consent, headers=h).status_code == 201

    url = f"{API}/customers/{cid}/timeline"
    full = client.get(url, params={"limit": 200}, headers=h).json()
    assert full["next_cursor"] is None
    items = full["items"]
    keys = [(i["at"], i["kind"], i["id"]) for i in items]
    assert [(k[1]) for k in keys] == [
        "event", "order", "points", "return", "event", "consent", "points", "order", "lifecycle",
    ]  # ties on time are ordered by kind, then id
    assert keys == sorted(keys, reverse=True)
    assert items[0]["data"]["properties"] == {"screen": "home"}
    assert items[1]["title"] == "Order o-2: 30.0000 EUR"
    assert items[3]["data"]["order_external_id"] == "o-1"

    paged: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(url, params=params, headers=h).json()
        paged += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == items
    assert spy_source[-1][3] == 3  # each source is asked for one item more than the page
    assert client.get(url, params={"cursor": "bm90LWEtY3Vyc29y"}, headers=h).status_code == 422
    assert client.get(url, params={"limit": 0}, headers=h).status_code == 422


PII = ["zelda.pii@example.com", "+442079460018", "Zeldaname", "Piilastname", "1977-07-07", "dupe.pii@example.com",
       "Dupefirst", "zelda-device-9", "Baker Street 221b", "203.0.113.99", "ZeldaBrowser/1.0"]


def _dump_database(db: Database) -> str:
    """Every row of every table, as text."""
    chunks = []
    with db.unit_of_work(read_only=True) as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                chunks.append(json.dumps([str(v) for v in row], ensure_ascii=False))
    return "\n".join(chunks)


def test_export_then_erase_leaves_no_personal_data(client: TestClient, tenant: Tenant, db: Database) -> None:
    h = tenant.headers
    ws = tenant.workspace_id
    client.post(f"{API}/customer-attributes", json={"name": "nickname", "type": "string"}, headers=h)
    created = client.post(f"{API}/customers", headers={**h, "Idempotency-Key": "create-zelda"}, json={
        "external_id": "z-1", "email": "Zelda.Pii@example.com", "phone": "+44 20 7946 0018",
        "first_name": "Zeldaname", "last_name": "Piilastname", "birthday": "1977-07-07", "tags": ["Zeldaname"],
        "attributes": {"nickname": "Zeldaname"}, "country": "GB", "timezone": "Europe/London",
    })
    cid = created.json()["id"]
    dupe = create_customer(client, tenant, external_id="z-2", email="dupe.pii@example.com", first_name="Dupefirst")
    client.post(f"{API}/customers/{cid}/identities", json={"kind": "device_id", "value": "zelda-device-9"}, headers=h)
    consent = {"channel": "email", "status": "granted", "source": "checkout", "ip": "203.0.113.99",
               "user_agent": "ZeldaBrowser/1.0", "text": "Yes, email me"}
    client.post(f"{API}/customers/{dupe['id']}/consents", json=consent, headers=h)
    order = add_order(db, ws, dupe["id"], "zo-1", "80.00", T0, attributes={"ship_to": "Baker Street 221b"})
    add_return(db, ws, order, "zr-1", "20.00", T0 + timedelta(days=2), reason="Zeldaname did not like it")
    review = {"author": "Zeldaname", "email": "zelda.pii@example.com"}
    add_event(db, ws, dupe["id"], "ze-1", "review_posted", T0, review)
    merged = client.post(f"{API}/customers/{cid}/merge", json={"duplicate_id": dupe["id"]}, headers=h)
    assert merged.status_code == 200, merged.text

    seen: dict[str, Any] = {}
    gdpr.register_exporter("test-extra", lambda s, w, c: {"customer": c, "when": T0})
    gdpr.register_eraser("test-extra", lambda s, w, c: seen.setdefault("erased", c))
    try:
        export = client.get(f"{API}/customers/{cid}/export", headers=h)
        assert export.status_code == 200
        doc = export.json()
        assert doc["customer"]["email"] == "zelda.pii@example.com"
        assert [p["id"] for p in doc["merged_profiles"]] == [dupe["id"]]
        assert {i["value"] for i in doc["identities"]} >= {"zelda-device-9", "dupe.pii@example.com", "z-2"}
        assert doc["consent_evidence"][0]["ip"] == "203.0.113.99"
        assert doc["orders"][0]["total"] == "80.0000" and doc["orders"][0]["lines"] == []
        assert doc["returns"][0]["amount"] == "20.0000"
        assert doc["events"][0]["properties"]["author"] == "Zeldaname"
        assert doc["lifecycle_history"]
        assert doc["test-extra"] == {"customer": cid, "when": T0.isoformat()}

        erased = client.post(f"{API}/customers/{cid}/erase", headers=h)
        assert erased.status_code == 200, erased.text
        assert seen == {"erased": cid}
    finally:
        gdpr._EXPORTERS.pop("test-extra", None)
        gdpr._ERASERS.pop("test-extra", None)
    body = erased.json()
    assert body["erased_at"] is not None and body["external_id"] == f"erased-{cid}"
    assert (body["orders_count"], body["total_spent"]) == (1, "60.0000")  # the books stay consistent

    dump = _dump_database(db)
    leaks = [value for value in PII if value.lower() in dump.lower()]
    assert leaks == []

    assert client.post(f"{API}/customers/{cid}/erase", headers=h).status_code == 200
    assert client.patch(f"{API}/customers/{cid}", json={"first_name": "Z"}, headers=h).json()["code"] == (
        "customer_erased"
    )
    assert client.post(f"{API}/customers/{dupe['id']}/erase", headers=h).json()["code"] == "customer_merged"
    consents = client.get(f"{API}/customers/{cid}/consents", headers=h).json()
    assert consents["can_message"]["email"] is False
    evidence = client.get(f"{API}/customers/{cid}/consents/evidence", headers=h).json()["items"]
    assert [(e["status"], e["source"]) for e in evidence] == [("withdrawn", "erasure"), ("granted", "checkout")]
    assert all(e["pii_erased_at"] and e["ip"] is None for e in evidence)
    assert evidence[1]["text"] == "Yes, email me"

    # The old identifiers lead nowhere: the same email is a new person now.
    assert client.get(f"{API}/customers", params={"q": "zelda.pii@example.com"}, headers=h).json()["items"] == []
    again = client.post(f"{API}/customers", json={"email": "zelda.pii@example.com"}, headers=h)
    assert again.status_code == 201 and again.json()["id"] not in (cid, dupe["id"])
    assert client.post(f"{API}/customers", json={"external_id": "z-1"}, headers=h).status_code == 201
    export_after = json.dumps(client.get(f"{API}/customers/{cid}/export", headers=h).json())
    assert "Zeldaname" not in export_after and "zelda.pii" not in export_after
