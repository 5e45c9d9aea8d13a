"""The list of domains. A new domain adds its modules here and nowhere else.

``MODELS`` are imported so SQLAlchemy metadata (and Alembic) see every table; ``TASKS`` so the worker
knows every job handler, event subscriber and periodic task; ``ROUTERS`` are mounted under ``/api/v1``.
"""

from __future__ import annotations

import importlib

from fastapi import APIRouter

MODELS = [
    "patronage.kit.audit",
    "patronage.kit.idempotency",
    "patronage.kit.ratelimit",
    "patronage.kit.jobs.models",
    "patronage.workspaces.models",
    "patronage.webhooks.models",
    "patronage.customers.models",
    "patronage.events.models",
    "patronage.ledger.models",
    "patronage.members.models",
    "patronage.tiers.models",
    "patronage.rewards.models",
    "patronage.referrals.models",
    "patronage.liability.models",
    "patronage.earning.models",
    "patronage.segments.models",
    "patronage.analytics.models",
]

TASKS = [
    "patronage.kit.jobs.tasks",
    "patronage.customers.tasks",
    "patronage.webhooks.tasks",
    "patronage.kit.mail",
    "patronage.kit.ratelimit",
    "patronage.ledger.tasks",
    "patronage.tiers.tasks",
    "patronage.rewards.tasks",
    "patronage.referrals.tasks",
    "patronage.liability.tasks",
    "patronage.earning.tasks",
    "patronage.segments.tasks",
    "patronage.analytics.tasks",
]

ROUTERS = [
    # Ingestion first: the shop's order and event calls are most of the traffic, and a request walks
    # the routers in this order until one matches (no two routers share a path prefix).
    "patronage.events.endpoints",
    "patronage.events.behaviour_endpoints",
    "patronage.workspaces.endpoints",
    "patronage.members.endpoints",
    "patronage.kit.jobs.endpoints",
    "patronage.customers.endpoints",
    "patronage.webhooks.endpoints",
    "patronage.ledger.endpoints",
    "patronage.events.shopify.endpoints",
    "patronage.tiers.endpoints",
    "patronage.rewards.endpoints",
    "patronage.rewards.coupon_endpoints",
    "patronage.referrals.endpoints",
    "patronage.liability.endpoints",
    "patronage.earning.endpoints",
    "patronage.segments.endpoints",
    "patronage.analytics.endpoints",
]

# `patronage doctor` runs every check these modules expose as ``CHECKS`` (see kit/doctor.py).
DOCTOR_CHECKS = [
    "patronage.kit.doctor",
    "patronage.customers.doctor",
    "patronage.events.doctor",
    "patronage.ledger.doctor",
    "patronage.tiers.doctor",
    "patronage.rewards.doctor",
    "patronage.referrals.doctor",
]


def load_models() -> None:
    for name in MODELS:
        importlib.import_module(name)


def load_tasks() -> None:
    load_models()
    for name in TASKS:
        importlib.import_module(name)


def routers() -> list[APIRouter]:
    return [importlib.import_module(name).router for name in ROUTERS]


# Sub-commands: (name, module exposing ``cli: typer.Typer``).
CLI: list[tuple[str, str]] = [
    ("import", "patronage.events.cli"),
    ("analytics", "patronage.analytics.cli"),
    ("report", "patronage.analytics.report_cli"),
]

# `patronage demo` calls each ``module.function(db, workspace_id, console)`` in order.
DEMO_LOADERS: list[str] = [
    "patronage.events.demo.load_cdnow",
    "patronage.earning.demo.load",
    "patronage.liability.demo.snapshot",
    "patronage.analytics.demo.refresh",
    "patronage.web.demo.portal_member",
]
