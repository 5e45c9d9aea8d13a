"""Loyalty program settings: tiers, the rewards catalog, referrals, and points (expiry and ledger)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from patronage.kit.errors import Conflict, PatronageError, ValidationFailed
from patronage.ledger import program as points_program
from patronage.ledger.schemas import LoyaltySettingsUpdate
from patronage.referrals import service as referrals
from patronage.referrals.schemas import ReferralProgramIn
from patronage.rewards import service as rewards
from patronage.rewards import views as reward_views
from patronage.rewards.rules import RewardKind
from patronage.rewards.schemas import RewardCreate, RewardUpdate
from patronage.tiers import service as tiers
from patronage.tiers.rules import DowngradePolicy, Metric, Window
from patronage.tiers.schemas import TierCreate, TierProgramIn
from patronage.web.console.deps import Console, DbSession, P, console
from patronage.web.console.forms import field_errors, optional
from patronage.web.i18n import N_
from patronage.web.route import WebRoute, redirect

router = APIRouter(route_class=WebRoute, include_in_schema=False)
PROGRAM = "/console/program"
KIND_LABELS = {
    RewardKind.FIXED_DISCOUNT: N_("Money off"), RewardKind.PERCENTAGE_DISCOUNT: N_("Percentage off"),
    RewardKind.FREE_SHIPPING: N_("Free shipping"), RewardKind.FREE_PRODUCT: N_("Free product"),
    RewardKind.EXPERIENCE: N_("Experience"), RewardKind.DONATION: N_("Donation"), RewardKind.CUSTOM: N_("Other"),
}
METRICS = {Metric.SPEND: N_("Money spent"), Metric.POINTS_EARNED: N_("Points earned"), Metric.ORDERS: N_("Orders")}
WINDOWS = {Window.CALENDAR_YEAR: N_("Calendar year"), Window.ROLLING_12_MONTHS: N_("Last 12 months"),
           Window.LIFETIME: N_("Lifetime")}
DOWNGRADES = {DowngradePolicy.DROP_ONE: N_("Drop one tier at a time"),
              DowngradePolicy.QUALIFIED: N_("Drop to the tier still qualified for")}


def _options(ctx: Console, labels: dict[Any, str]) -> list[tuple[str, str]]:
    return [(str(k.value), ctx._(v)) for k, v in labels.items()]


# ---- tiers ------------------------------------------------------------------------------------------
def _tiers_page(ctx: Console, *, errors: dict[str, str] | None = None, form: dict[str, str] | None = None,
                status_code: int = 200) -> Response:
    ws = ctx.workspace.id
    settings = tiers.program(ctx.session, ws)
    return ctx.render("console/tiers.html", {
        "settings": settings, "counts": tiers.tier_counts(ctx.session, ws), "errors": errors or {},
        "form": form or {}, "metrics": _options(ctx, METRICS), "windows": _options(ctx, WINDOWS),
        "downgrades": _options(ctx, DOWNGRADES),
    }, status_code=status_code)


@router.get(f"{PROGRAM}/tiers")
def tiers_page(request: Request, *, session: DbSession) -> Response:
    return _tiers_page(console(request, session, P.LOYALTY_READ))


@router.post(f"{PROGRAM}/tiers")
def create_tier(
    request: Request, *, session: DbSession, csrf_token: Annotated[str, Form()], name: Annotated[str, Form()],
    threshold: Annotated[str, Form()], earning_multiplier: Annotated[str, Form()] = "1",
    perks: Annotated[str, Form(max_length=4000)] = "", description: Annotated[str, Form(max_length=2000)] = "",
    color: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    ctx = console(request, session, P.LOYALTY_MANAGE, csrf_token=csrf_token)
    form = {"name": name, "threshold": threshold, "earning_multiplier": earning_multiplier, "perks": perks}
    try:
        body = TierCreate(name=name, threshold=threshold, earning_multiplier=earning_multiplier or "1",
                          description=description, color=optional(color),
                          perks=[p.strip() for p in perks.splitlines() if p.strip()])
        tiers.create_tier(session, ctx.workspace.id, body, actor=ctx.principal.actor)
    except (ValidationError, ValidationFailed, Conflict) as exc:
        session.rollback()
        return _tiers_page(ctx, errors=field_errors(exc), form=form, status_code=422)
    return redirect(request, f"{PROGRAM}/tiers?done=created")


@router.post(f"{PROGRAM}/tiers/{{tier_id}}/delete")
def delete_tier(request: Request, *, session: DbSession, tier_id: int, csrf_token: Annotated[str, Form()]) -> Response:
    ctx = console(request, session, P.LOYALTY_MANAGE, csrf_token=csrf_token)
    tiers.delete_tier(session, ctx.workspace.id, tier_id, actor=ctx.principal.actor)
    return redirect(request, f"{PROGRAM}/tiers?done=deleted")


@router.post(f"{PROGRAM}/tiers/program")
def save_tier_program(
    request: Request, *, session: DbSession, csrf_token: Annotated[str, Form()], metric: Annotated[str, Form()],
    window: Annotated[str, Form()], grace_days: Annotated[str, Form()], downgrade_policy: Annotated[str, Form()],
) -> Response:
    ctx = console(request, session, P.LOYALTY_MANAGE, csrf_token=csrf_token)
    try:
        body = TierProgramIn.model_validate({"metric": metric, "window": window, "grace_days": grace_days,
                                             "downgrade_policy": downgrade_policy})
    except ValidationError as exc:
        return _tiers_page(ctx, errors=field_errors(exc), status_code=422)
    tiers.update_program(session, ctx.workspace.id, body, actor=ctx.principal.actor)
    return redirect(request, f"{PROGRAM}/tiers?done=saved")


# ---- rewards ----------------------------------------------------------------------------------------
def _rewards_page(ctx: Console, *, errors: dict[str, str] | None = None, form: dict[str, str] | None = None,
                  cursor: str | None = None, status_code: int = 200) -> Response:
    rows, next_cursor = reward_views.list_rewards(ctx.session, ctx.workspace.id, active=None, cursor=cursor, limit=50)
    return ctx.render("console/rewards.html", {
        "rewards": rows, "errors": errors or {}, "form": form or {}, "kinds": _options(ctx, KIND_LABELS),
        "kind_labels": KIND_LABELS, "next_url": f"{PROGRAM}/rewards?cursor={next_cursor}" if next_cursor else None,
    }, status_code=status_code)


@router.get(f"{PROGRAM}/rewards")
def rewards_page(request: Request, *, session: DbSession, cursor: str | None = None) -> Response:
    return _rewards_page(console(request, session, P.LOYALTY_READ), cursor=cursor)


@router.post(f"{PROGRAM}/rewards")
def create_reward(
    request: Request, *, session: DbSession, csrf_token: Annotated[str, Form()], name: Annotated[str, Form()],
    kind: Annotated[str, Form()], points_cost: Annotated[str, Form()], value: Annotated[str, Form()] = "",
    description: Annotated[str, Form(max_length=4000)] = "", stock: Annotated[str, Form()] = "",
    coupon_valid_days: Annotated[str, Form()] = "", sku: Annotated[str, Form()] = "",
    image_url: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    ctx = console(request, session, P.LOYALTY_MANAGE, csrf_token=csrf_token)
    form = {"name": name, "kind": kind, "points_cost": points_cost, "value": value, "description": description,
            "stock": stock, "coupon_valid_days": coupon_valid_days, "sku": sku, "image_url": image_url}
    try:
        body = RewardCreate.model_validate({k: optional(v) for k, v in form.items() if optional(v) is not None})
        rewards.create_reward(session, ctx.workspace.id, body, actor=ctx.principal.actor)
    except (ValidationError, PatronageError) as exc:
        session.rollback()
        return _rewards_page(ctx, errors=field_errors(exc), form=form, status_code=422)
    return redirect(request, f"{PROGRAM}/rewards?done=created")


@router.post(f"{PROGRAM}/rewards/{{reward_id}}/active")
def toggle_reward(
    request: Request, *, session: DbSession, reward_id: int, csrf_token: Annotated[str, Form()],
    active: Annotated[str, Form()],
) -> Response:
    ctx = console(request, session, P.LOYALTY_MANAGE, csrf_token=csrf_token)
    rewards.update_reward(session, ctx.workspace.id, reward_id, RewardUpdate(active=active == "1"),
                          actor=ctx.principal.actor)
    return redirect(request, f"{PROGRAM}/rewards?done=saved")


# ---- referrals ----------------------------------------------------------------------------------------
@router.get(f"{PROGRAM}/referrals")
def referrals_page(request: Request, *, session: DbSession) -> Response:
    ctx = console(request, session, P.LOYALTY_READ)
    return _referrals_page(ctx)


def _referrals_page(ctx: Console, *, errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    ws = ctx.workspace.id
    catalog, _ = reward_views.list_rewards(ctx.session, ws, active=True, cursor=None, limit=200)
    return ctx.render("console/referrals.html", {
        "program": referrals.program(ctx.session, ws), "stats": referrals.stats(ctx.session, ws),
        "rewards": [("", "—"), *[(str(r.id), r.name) for r in catalog]], "errors": errors or {},
    }, status_code=status_code)


@router.post(f"{PROGRAM}/referrals")
def save_referrals(request: Request, *, session: DbSession, csrf_token: Annotated[str, Form()],
                   welcome_trigger: Annotated[str, Form()], welcome_points: Annotated[str, Form()],
                   referrer_points: Annotated[str, Form()], welcome_reward_id: Annotated[str, Form()] = "",
                   referrer_reward_id: Annotated[str, Form()] = "", min_order_amount: Annotated[str, Form()] = "",
                   max_per_day: Annotated[str, Form()] = "", max_per_week: Annotated[str, Form()] = "",
                   active: Annotated[str | None, Form()] = None,
                   hold_existing_customers: Annotated[str | None, Form()] = None,
                   signup_url: Annotated[str, Form(max_length=2000)] = "") -> Response:
    ctx = console(request, session, P.LOYALTY_MANAGE, csrf_token=csrf_token)
    raw = {"active": bool(active), "welcome_trigger": welcome_trigger, "welcome_points": welcome_points,
           "referrer_points": referrer_points, "welcome_reward_id": optional(welcome_reward_id),
           "referrer_reward_id": optional(referrer_reward_id), "min_order_amount": optional(min_order_amount),
           "max_per_day": optional(max_per_day), "max_per_week": optional(max_per_week),
           "hold_existing_customers": bool(hold_existing_customers), "signup_url": optional(signup_url)}
    try:
        referrals.update_program(session, ctx.workspace.id, ReferralProgramIn.model_validate(raw),
                                 actor=ctx.principal.actor)
    except (ValidationError, PatronageError) as exc:
        session.rollback()
        return _referrals_page(ctx, errors=field_errors(exc), status_code=422)
    return redirect(request, f"{PROGRAM}/referrals?done=saved")


# ---- points: expiry and ledger settings -----------------------------------------------------------------
@router.get(f"{PROGRAM}/points")
def points_page(request: Request, *, session: DbSession) -> Response:
    ctx = console(request, session, P.LOYALTY_READ)
    return _points_page(ctx, points_program.settings_values(session, ctx.workspace.id))


def _points_page(ctx: Console, values: dict[str, Any], *, errors: dict[str, str] | None = None,
                 status_code: int = 200) -> Response:
    return ctx.render("console/points.html", {"values": values, "errors": errors or {}}, status_code=status_code)


@router.post(f"{PROGRAM}/points")
def save_points(request: Request, *, session: DbSession, csrf_token: Annotated[str, Form()],
                points_name: Annotated[str, Form()], return_window_days: Annotated[str, Form()],
                expiry_policy: Annotated[str, Form()], expiry_months: Annotated[str, Form()],
                expiry_period: Annotated[str, Form()], expiry_warning_days: Annotated[str, Form()],
                reversal_shortfall: Annotated[str, Form()], cost_per_point: Annotated[str, Form()],
                breakage_rate: Annotated[str, Form()] = "",
                allow_negative_balance: Annotated[str | None, Form()] = None) -> Response:
    ctx = console(request, session, P.LOYALTY_MANAGE, csrf_token=csrf_token)
    raw: dict[str, Any] = {
        "points_name": points_name, "return_window_days": return_window_days, "expiry_policy": expiry_policy,
        "expiry_months": expiry_months, "expiry_period": expiry_period, "expiry_warning_days": expiry_warning_days,
        "reversal_shortfall": reversal_shortfall, "cost_per_point": cost_per_point,
        "breakage_rate": optional(breakage_rate), "allow_negative_balance": bool(allow_negative_balance),
    }
    try:
        body = LoyaltySettingsUpdate.model_validate(raw)
        sent = body.model_dump(exclude_unset=True)
        changes = {k: v for k, v in sent.items() if v is not None or k == "breakage_rate"}
        points_program.update_settings(session, ctx.workspace.id, changes, actor=ctx.principal.actor)
    except (ValidationError, PatronageError) as exc:
        session.rollback()
        return _points_page(ctx, raw, errors=field_errors(exc), status_code=422)
    return redirect(request, f"{PROGRAM}/points?done=saved")
