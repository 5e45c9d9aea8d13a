"""Schemathesis over the whole OpenAPI document, in process, with an all-scopes API key: no response is a
5xx, every status code, content type, header and body conforms to the document, and no request gets as
far as the database with a value it cannot store (``value_not_storable``: the field lacks a bound).

``make test``: a few derandomised examples per operation; ``make soak``: many, random (failures print
the operation, the case and a curl line to replay it).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from patronage.kit.db import Database
from patronage.workspaces import service
from patronage.workspaces.permissions import ALL
from tests.battery.conftest import SOAK
from tests.conftest import Tenant

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
PUBLIC = ("/auth/login", "/magic-link", "/sessions", "/integrations/shopify/webhooks")


class Credentials:
    """An all-scopes key; minted again when the fuzzer revokes it (DELETE /api-keys/{id} with its id)."""

    def __init__(self, db: Database, tenant: Tenant) -> None:
        self.db, self.tenant = db, tenant
        self.headers = dict(tenant.headers)
        self.minted = 0

    def mint(self) -> None:
        all_scopes = [p.value for p in ALL]
        with self.db.unit_of_work() as session:
            _, secret = service.create_api_key(
                session, self.tenant.workspace_id, name=f"fuzz-{self.minted}", scopes=all_scopes, actor="test",
                actor_permissions=frozenset(all_scopes), created_by_user_id=None)
        self.headers["Authorization"] = f"Bearer {secret}"
        self.minted += 1


def fuzz(operation: Any, examples: int, credentials: Credentials, codes: Counter[int],
         failures: dict[str, list[str]]) -> Any:
    """A Hypothesis test of one operation that records what fails instead of stopping at it."""
    label, public = operation.label, operation.path.endswith(PUBLIC)

    @settings(max_examples=examples, deadline=None, database=None, derandomize=not SOAK,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE))
    def exercise(case: Any) -> None:
        try:
            response = case.call(headers=credentials.headers)
            if response.status_code == 401 and not public:
                credentials.mint()
                response = case.call(headers=credentials.headers)
            codes[response.status_code] += 1
            case.validate_response(response, checks=CHECKS, headers=credentials.headers)
            if response.status_code == 422 and b"value_not_storable" in response.content:
                raise AssertionError(f"a value reached the database unchecked: {response.text[:500]}")
        except Exception as exc:  # collected: one run reports every failing operation
            if len(failures[label]) < 3:
                failures[label].append(f"{type(exc).__name__}: {str(exc)[:3000]}")

    return exercise


@pytest.fixture
def quiet_logs() -> Iterator[None]:
    """The fuzzer provokes thousands of 4xx (and, on a regression, logged 5xx); keep the output readable."""
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


@pytest.mark.usefixtures("quiet_logs")
@pytest.mark.parametrize("examples", [pytest.param(8, id="8-per-operation"),
                                      pytest.param(200, id="200-per-operation", marks=pytest.mark.soak)])
def test_every_operation_conforms_to_the_openapi_document(
    app: FastAPI, db: Database, tenant: Tenant, examples: int
) -> None:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    credentials = Credentials(db, tenant)
    failures: dict[str, list[str]] = defaultdict(list)
    codes: Counter[int] = Counter()
    operations = 0
    for result in schema.get_all_operations():
        operations += 1
        fuzz(result.ok(), examples, credentials, codes, failures)()
    assert operations > 150
    print(f"schemathesis: {operations} operations, responses by status {sorted(codes.items())}, "
          f"keys minted again {credentials.minted}")
    assert not failures, "\n\n".join(f"== {label}\n" + "\n--\n".join(found) for label, found in failures.items())
