"""HTTP routes of earning rules: rule sets, versions, publishing, preview and backtests."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status
from sqlalchemy.orm import Session

from patronage.earning import backtest, preview, rulesets
from patronage.earning.models import RuleSet
from patronage.earning.repository import RuleSetRepository, backtests_page
from patronage.earning.schemas import (
    BacktestCreate,
    BacktestOut,
    PreviewIn,
    PreviewOut,
    RuleSetCreate,
    RuleSetOut,
    RuleSetUpdate,
    VersionCreate,
    VersionOut,
    VersionUpdate,
)
from patronage.kit.http.route import UnitOfWorkRoute, request_session
from patronage.kit.pagination import Page
from patronage.kit.schemas import MAX_COUNT
from patronage.workspaces.auth import Principal, require
from patronage.workspaces.permissions import Permission

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/earning", tags=["earning rules"])
DbSession = Annotated[Session, Depends(request_session)]
Reader = Annotated[Principal, Depends(require(Permission.LOYALTY_READ))]
Manager = Annotated[Principal, Depends(require(Permission.LOYALTY_MANAGE))]
VersionNo = Annotated[int, Path(ge=1, le=MAX_COUNT)]


def _out(session: Session, ws: int, rule_set: RuleSet) -> RuleSetOut:
    versions = [v.version for v in RuleSetRepository(session, ws).versions(rule_set.id)]
    return RuleSetOut.model_validate(rule_set).model_copy(update={"versions": versions})


@router.get("/rule-sets", response_model=list[RuleSetOut])
def list_rule_sets(session: DbSession, principal: Reader, include_archived: bool = False) -> list[RuleSetOut]:
    return [_out(session, principal.workspace_id, rs)
            for rs in rulesets.list_rule_sets(session, principal.workspace_id, include_archived=include_archived)]


@router.post("/rule-sets", response_model=RuleSetOut, status_code=status.HTTP_201_CREATED)
def create_rule_set(body: RuleSetCreate, session: DbSession, principal: Manager) -> RuleSetOut:
    rule_set = rulesets.create_rule_set(session, principal.workspace_id, name=body.name, description=body.description,
                                        document=body.document, actor=principal.actor)
    return _out(session, principal.workspace_id, rule_set)


@router.get("/rule-sets/{rule_set_id}", response_model=RuleSetOut)
def get_rule_set(rule_set_id: int, session: DbSession, principal: Reader) -> RuleSetOut:
    return _out(session, principal.workspace_id, rulesets.get_rule_set(session, principal.workspace_id, rule_set_id))


@router.patch("/rule-sets/{rule_set_id}", response_model=RuleSetOut)
def update_rule_set(rule_set_id: int, body: RuleSetUpdate, session: DbSession, principal: Manager) -> RuleSetOut:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    rule_set = rulesets.update_rule_set(session, principal.workspace_id, rule_set_id, changes, actor=principal.actor)
    return _out(session, principal.workspace_id, rule_set)


@router.post("/rule-sets/{rule_set_id}/unpublish", response_model=RuleSetOut)
def unpublish(rule_set_id: int, session: DbSession, principal: Manager) -> RuleSetOut:
    rule_set = rulesets.unpublish(session, principal.workspace_id, rule_set_id, actor=principal.actor)
    return _out(session, principal.workspace_id, rule_set)


@router.get("/rule-sets/{rule_set_id}/versions", response_model=list[VersionOut])
def list_versions(rule_set_id: int, session: DbSession, principal: Reader) -> list[VersionOut]:
    rulesets.get_rule_set(session, principal.workspace_id, rule_set_id)
    versions = RuleSetRepository(session, principal.workspace_id).versions(rule_set_id)
    return [VersionOut.model_validate(v) for v in versions]


@router.post("/rule-sets/{rule_set_id}/versions", response_model=VersionOut, status_code=status.HTTP_201_CREATED)
def create_version(rule_set_id: int, body: VersionCreate, session: DbSession, principal: Manager) -> VersionOut:
    version = rulesets.create_version(session, principal.workspace_id, rule_set_id, document=body.document,
                                      notes=body.notes, actor=principal.actor)
    return VersionOut.model_validate(version)


@router.get("/rule-sets/{rule_set_id}/versions/{version}", response_model=VersionOut)
def get_version(rule_set_id: int, version: VersionNo, session: DbSession, principal: Reader) -> VersionOut:
    return VersionOut.model_validate(rulesets.get_version(session, principal.workspace_id, rule_set_id, version))


@router.put("/rule-sets/{rule_set_id}/versions/{version}", response_model=VersionOut)
def update_version(rule_set_id: int, version: VersionNo, body: VersionUpdate, session: DbSession,
                   principal: Manager) -> VersionOut:
    found = rulesets.update_version(session, principal.workspace_id, rule_set_id, version, document=body.document,
                                    notes=body.notes, actor=principal.actor)
    return VersionOut.model_validate(found)


@router.post("/rule-sets/{rule_set_id}/versions/{version}/publish", response_model=VersionOut)
def publish(rule_set_id: int, version: VersionNo, session: DbSession, principal: Manager) -> VersionOut:
    published = rulesets.publish(session, principal.workspace_id, rule_set_id, version, actor=principal.actor)
    return VersionOut.model_validate(published)


@router.post("/preview", response_model=PreviewOut)
def preview_order(body: PreviewIn, session: DbSession, principal: Reader) -> PreviewOut:
    """What would this order earn? Every rule's verdict and why; nothing is recorded."""
    return preview.preview(session, principal.workspace_id, body)


@router.post("/backtests", response_model=BacktestOut, status_code=status.HTTP_202_ACCEPTED)
def start_backtest(body: BacktestCreate, session: DbSession, principal: Manager) -> BacktestOut:
    return BacktestOut.model_validate(backtest.start(session, principal.workspace_id, body, actor=principal.actor))


@router.get("/backtests", response_model=Page[BacktestOut])
def list_backtests(session: DbSession, principal: Reader, cursor: str | None = None,
                   limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Page[BacktestOut]:
    rows, next_cursor = backtests_page(session, principal.workspace_id, cursor=cursor, limit=limit)
    return Page[BacktestOut](items=[BacktestOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/backtests/{backtest_id}", response_model=BacktestOut)
def get_backtest(backtest_id: int, session: DbSession, principal: Reader) -> BacktestOut:
    return BacktestOut.model_validate(backtest.get(session, principal.workspace_id, backtest_id))
