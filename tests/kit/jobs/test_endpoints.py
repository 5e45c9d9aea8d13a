"""Operators' dead-letter view: list a workspace's jobs and retry the dead ones."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import update

from patronage.kit.db import Database
from patronage.kit.jobs import enqueue
from patronage.kit.jobs.models import Job, JobStatus
from tests.conftest import Tenant
from tests.kit.jobs.conftest import load_job


def _dead_job(db: Database, workspace_id: int, unique_key: str | None = None) -> int:
    with db.unit_of_work() as session:
        job_id = enqueue(session, "test.fail", {"key": "x"}, workspace_id=workspace_id, unique_key=unique_key)
        session.execute(
            update(Job).where(Job.id == job_id).values(status=JobStatus.DEAD, attempts=3, last_error="boom")
        )
    assert job_id is not None
    return job_id


def test_dead_letters_are_listed_and_retried(client: TestClient, db: Database, tenant: Tenant) -> None:
    dead = _dead_job(db, tenant.workspace_id)
    with db.unit_of_work() as session:
        enqueue(session, "test.record", workspace_id=tenant.workspace_id)

    listed = client.get("/api/v1/jobs", params={"status": "dead"}, headers=tenant.headers)
    assert listed.status_code == 200
    assert [(j["id"], j["last_error"]) for j in listed.json()["items"]] == [(dead, "boom")]
    assert len(client.get("/api/v1/jobs", headers=tenant.headers).json()["items"]) == 2

    retried = client.post(f"/api/v1/jobs/{dead}/retry", headers=tenant.headers)
    assert retried.status_code == 200
    assert (retried.json()["status"], retried.json()["attempts"]) == ("queued", 0)
    assert load_job(db, dead).status == JobStatus.QUEUED

    again = client.post(f"/api/v1/jobs/{dead}/retry", headers=tenant.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "job_not_dead"


def test_retrying_a_dead_job_whose_twin_waits_is_a_conflict(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    dead = _dead_job(db, tenant.workspace_id, unique_key="nightly")
    with db.unit_of_work() as session:
        enqueue(session, "test.record", workspace_id=tenant.workspace_id, unique_key="nightly")
    response = client.post(f"/api/v1/jobs/{dead}/retry", headers=tenant.headers)
    assert response.status_code == 409  # not a 500 from the unique index
    assert response.json()["code"] == "job_already_queued"
    assert load_job(db, dead).status == JobStatus.DEAD


def test_jobs_of_another_workspace_are_invisible(
    client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = _dead_job(db, other_tenant.workspace_id)
    assert client.get("/api/v1/jobs", headers=tenant.headers).json()["items"] == []
    response = client.post(f"/api/v1/jobs/{theirs}/retry", headers=tenant.headers)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert load_job(db, theirs).status == JobStatus.DEAD
