"""HTTP routes of the ledger: program settings, balances, history, lots, adjustments; member reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from sqlalchemy.orm import Session

from patronage.kit.errors import NotFound, field_error
from patronage.kit.http.route import UnitOfWorkRoute, request_session
from patronage.kit.pagination import Page
from patronage.ledger import program, service
from patronage.ledger.models import LedgerTransaction, TxKind
from patronage.ledger.repository import LedgerRepository
from patronage.ledger.schemas import (
    AdjustmentIn,
    Balance,
    EntryOut,
    LotOut,
    LoyaltySettingsOut,
    LoyaltySettingsUpdate,
    TransactionOut,
)
from patronage.workspaces.auth import Principal, require, require_member
from patronage.workspaces.permissions import Permission

router = APIRouter(route_class=UnitOfWorkRoute, tags=["points"])
DbSession = Annotated[Session, Depends(request_session)]
Reader = Annotated[Principal, Depends(require(Permission.LOYALTY_READ))]
Writer = Annotated[Principal, Depends(require(Permission.LOYALTY_WRITE))]
Manager = Annotated[Principal, Depends(require(Permission.LOYALTY_MANAGE))]
Member = Annotated[Principal, Depends(require_member)]
KindFilter = Annotated[str | None, Query(pattern="^(" + "|".join(TxKind.ALL) + ")$")]
Limit = Annotated[int, Query(ge=1, le=200)]


@router.get("/loyalty/settings", response_model=LoyaltySettingsOut, tags=["loyalty settings"])
def get_settings(session: DbSession, principal: Reader) -> LoyaltySettingsOut:
    return LoyaltySettingsOut.model_validate(program.settings_values(session, principal.workspace_id))


@router.put("/loyalty/settings", response_model=LoyaltySettingsOut, tags=["loyalty settings"])
def update_settings(body: LoyaltySettingsUpdate, session: DbSession, principal: Manager) -> LoyaltySettingsOut:
    sent = body.model_dump(exclude_unset=True)
    changes = {k: v for k, v in sent.items() if v is not None or k == "breakage_rate"}
    values = program.update_settings(session, principal.workspace_id, changes, actor=principal.actor)
    return LoyaltySettingsOut.model_validate(values)


# ---- staff views of a customer's points --------------------------------------------------------------
@router.get("/customers/{customer_id}/points", response_model=Balance)
def get_balance(
    customer_id: int, *, session: DbSession, principal: Reader,
    expiring_within_days: Annotated[int, Query(ge=0, le=3650)] = 30,
) -> Balance:
    return service.balance(session, principal.workspace_id, customer_id, expiring_within_days=expiring_within_days)


@router.get("/customers/{customer_id}/points/transactions", response_model=Page[TransactionOut])
def list_transactions(
    customer_id: int, *, session: DbSession, principal: Reader, kind: KindFilter = None,
    cursor: str | None = None, limit: Limit = 50,
) -> Page[TransactionOut]:
    return _history(session, principal.workspace_id, customer_id, kind, cursor=cursor, limit=limit)


@router.get("/customers/{customer_id}/points/lots", response_model=Page[LotOut])
def list_lots(
    customer_id: int, *, session: DbSession, principal: Reader, open_only: bool = True,
    cursor: str | None = None, limit: Limit = 50,
) -> Page[LotOut]:
    return _lots(session, principal.workspace_id, customer_id, open_only, cursor=cursor, limit=limit)


@router.post("/customers/{customer_id}/points/adjustments", response_model=TransactionOut,
             status_code=status.HTTP_201_CREATED)
def adjust_points(
    customer_id: int, body: AdjustmentIn, request: Request, session: DbSession, principal: Writer
) -> TransactionOut:
    source_id = body.source_id or request.headers.get("idempotency-key")
    if not source_id:
        raise field_error("source_id", "send source_id or an Idempotency-Key header (adjustments are never doubled)")
    txn = service.adjust(session, principal.workspace_id, customer_id, body.points, reason=body.reason,
                         actor=principal.actor, source_id=source_id)
    return _transaction_out(session, principal.workspace_id, [txn])[0]


# ---- the signed-in member's own points ---------------------------------------------------------------
@router.get("/portal/points", response_model=Balance, tags=["member portal"])
def my_balance(session: DbSession, principal: Member) -> Balance:
    return service.balance(session, principal.workspace_id, principal.subject_id)


@router.get("/portal/points/transactions", response_model=Page[TransactionOut], tags=["member portal"])
def my_transactions(
    session: DbSession, principal: Member, kind: KindFilter = None, cursor: str | None = None, limit: Limit = 50,
) -> Page[TransactionOut]:
    return _history(session, principal.workspace_id, principal.subject_id, kind, cursor=cursor, limit=limit)


@router.get("/portal/points/lots", response_model=Page[LotOut], tags=["member portal"])
def my_lots(session: DbSession, principal: Member, cursor: str | None = None, limit: Limit = 50) -> Page[LotOut]:
    return _lots(session, principal.workspace_id, principal.subject_id, True, cursor=cursor, limit=limit)


# ---- helpers -----------------------------------------------------------------------------------------
def _account_id(session: Session, workspace_id: int, customer_id: int) -> int | None:
    repo = LedgerRepository(session, workspace_id)
    account = repo.account(customer_id)
    if account is None and not repo.customer_exists(customer_id):
        raise NotFound(f"customer {customer_id} not found")
    return account.id if account else None


def _history(session: Session, ws: int, customer_id: int, kind: str | None, *, cursor: str | None,
             limit: int) -> Page[TransactionOut]:
    account_id = _account_id(session, ws, customer_id)
    if account_id is None:
        return Page[TransactionOut](items=[])
    rows, next_cursor = LedgerRepository(session, ws).history(account_id, kind=kind, cursor=cursor, limit=limit)
    return Page[TransactionOut](items=_transaction_out(session, ws, rows), next_cursor=next_cursor)


def _lots(session: Session, ws: int, customer_id: int, open_only: bool, *, cursor: str | None,
          limit: int) -> Page[LotOut]:
    account_id = _account_id(session, ws, customer_id)
    if account_id is None:
        return Page[LotOut](items=[])
    rows, next_cursor = LedgerRepository(session, ws).lots(account_id, open_only=open_only, cursor=cursor, limit=limit)
    return Page[LotOut](items=[LotOut.model_validate(r) for r in rows], next_cursor=next_cursor)


def _transaction_out(session: Session, ws: int, txns: list[LedgerTransaction]) -> list[TransactionOut]:
    entries: dict[int, list[EntryOut]] = {}
    for entry in LedgerRepository(session, ws).entries_of([t.id for t in txns]):
        entries.setdefault(entry.transaction_id, []).append(EntryOut.model_validate(entry))
    return [
        TransactionOut.model_validate(t).model_copy(update={"entries": entries.get(t.id, [])}) for t in txns
    ]
