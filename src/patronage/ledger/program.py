"""The points program's settings per workspace: read (defaults when never saved) and update."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from patronage.kit.audit import audit
from patronage.kit.errors import NotFound
from patronage.ledger.expiry_rules import ExpiryPolicy
from patronage.ledger.models import LoyaltySettings
from patronage.workspaces.models import Workspace


@dataclass(frozen=True)
class Program:
    """What the ledger needs to know about a workspace's program, read once per operation."""

    workspace_id: int
    timezone: str
    currency: str
    points_name: str
    return_window_days: int
    expiry: ExpiryPolicy
    expiry_warning_days: int
    allow_negative_balance: bool
    reversal_shortfall: str
    cost_per_point: Decimal
    breakage_rate: Decimal | None


DEFAULTS: dict[str, object] = {
    "points_name": "points", "return_window_days": 30, "expiry_policy": "never", "expiry_months": 12,
    "expiry_period": "year", "expiry_warning_days": 30, "allow_negative_balance": False,
    "reversal_shortfall": "claw_back", "cost_per_point": Decimal("0.0100"), "breakage_rate": None,
}
FIELDS = tuple(DEFAULTS)
PLACES = Decimal("0.0001")


def _row(session: Session, workspace_id: int, *, for_update: bool = False) -> LoyaltySettings | None:
    stmt = select(LoyaltySettings).where(LoyaltySettings.workspace_id == workspace_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def _workspace(session: Session, workspace_id: int) -> Workspace:
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        raise NotFound("workspace not found")
    return workspace


def settings_values(session: Session, workspace_id: int) -> dict[str, object]:
    row = _row(session, workspace_id)
    return dict(DEFAULTS) if row is None else {name: getattr(row, name) for name in FIELDS}


def load_program(session: Session, workspace_id: int) -> Program:
    """The workspace's zone and currency with its program settings, in one query."""
    stmt = (
        select(Workspace.timezone, Workspace.currency, LoyaltySettings)
        .outerjoin(LoyaltySettings, LoyaltySettings.workspace_id == Workspace.id)
        .where(Workspace.id == workspace_id)
    )
    found = session.execute(stmt).one_or_none()
    if found is None:
        raise NotFound("workspace not found")
    timezone, currency, row = found
    values: dict[str, Any] = dict(DEFAULTS) if row is None else {name: getattr(row, name) for name in FIELDS}
    return Program(
        workspace_id=workspace_id,
        timezone=timezone,
        currency=currency,
        points_name=str(values["points_name"]),
        return_window_days=int(values["return_window_days"]),
        expiry=ExpiryPolicy(
            kind=values["expiry_policy"],
            months=int(values["expiry_months"]),
            period=values["expiry_period"],
        ),
        expiry_warning_days=int(values["expiry_warning_days"]),
        allow_negative_balance=bool(values["allow_negative_balance"]),
        reversal_shortfall=str(values["reversal_shortfall"]),
        cost_per_point=Decimal(str(values["cost_per_point"])),
        breakage_rate=None if values["breakage_rate"] is None else Decimal(str(values["breakage_rate"])),
    )


def update_settings(
    session: Session, workspace_id: int, changes: dict[str, object], *, actor: str
) -> dict[str, object]:
    """Apply ``changes`` (already validated by the schema) and return the full settings."""
    _workspace(session, workspace_id)
    row = _row(session, workspace_id, for_update=True)
    if row is None:
        row = LoyaltySettings(workspace_id=workspace_id, **DEFAULTS)
        session.add(row)
    before = {name: getattr(row, name) for name in changes}
    for name, value in changes.items():
        if name not in FIELDS:
            raise KeyError(name)
        # Decimals at the columns' scale: the same value read back on every database.
        setattr(row, name, value.quantize(PLACES) if isinstance(value, Decimal) else value)
    ExpiryPolicy(kind=row.expiry_policy, months=row.expiry_months, period=row.expiry_period)  # type: ignore[arg-type]
    session.flush()
    session.info.get("ledger.program", {}).pop(workspace_id, None)
    audit(session, workspace_id=workspace_id, actor=actor, action="loyalty_settings.updated",
          subject_type="loyalty_settings", subject_id=workspace_id,
          data={"from": _jsonable(before), "to": _jsonable(changes)})
    return {name: getattr(row, name) for name in FIELDS}


def _jsonable(values: dict[str, object]) -> dict[str, object]:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in values.items()}
