"""How many points a return takes back, pure and exact.

The earn transaction of an order stores the points of each line (``data["lines"]``: position ->
{points, quantity}) and the net amount they were computed from (``data["base"]``). A return of some
units of a line reverses ``floor(points x units returned so far / units) - already reversed`` for that
line, so returning every unit (at once or over several returns) reverses the line's points exactly. A
return by amount only (no lines) reverses points in proportion to the refunded share of the base,
cumulatively in the same way. Reward and discount lines earned nothing and take nothing back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from patronage.earning.amounts import ORDER_KEY

ZERO = Decimal(0)


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def points_to_reverse(
    earned: Mapping[str, Any], prior: Sequence[Mapping[str, Any]], returned: Mapping[str, Any]
) -> tuple[int, dict[str, Any]]:
    """(points, detail to store on the reversal) for the return ``returned`` (a ``return.applied``
    payload), given the earn transaction's data and the data of the order's earlier reversals."""
    lines: Mapping[str, Mapping[str, Any]] = earned.get("lines") or {}
    total = sum(int(v.get("points", 0)) for v in lines.values())
    done_lines: dict[str, tuple[int, int]] = {}
    done_amount, done_points = ZERO, 0
    for p in prior:
        done_points += int(p.get("reversed", 0))
        done_amount += Decimal(str(p.get("amount_basis", "0")))
        for key, v in (p.get("lines") or {}).items():
            q, pts = done_lines.get(key, (0, 0))
            done_lines[key] = (q + int(v.get("quantity", 0)), pts + int(v.get("points", 0)))
    detail: dict[str, Any] = {"lines": {}, "amount_basis": "0"}
    returned_lines = [r for r in (returned.get("lines") or []) if isinstance(r.get("position"), int)]
    points = 0
    if returned_lines and set(lines) != {ORDER_KEY}:
        for r in returned_lines:
            key = str(r["position"])
            line = lines.get(key)
            if not line:
                continue  # a reward line, or a line that earned nothing
            units = max(int(line.get("quantity", 1)), 1)
            q_done, p_done = done_lines.get(key, (0, 0))
            q_now = min(q_done + int(r.get("quantity", 0)), units)
            target = _floor(Decimal(int(line["points"])) * q_now / units)
            take = max(target - p_done, 0)
            done_lines[key] = (q_now, p_done + take)
            entry = detail["lines"].setdefault(key, {"quantity": 0, "points": 0})
            entry["quantity"] += q_now - q_done
            entry["points"] += take
            points += take
        return points, detail
    base = Decimal(str(earned.get("base", "0")))
    if base <= 0 or total <= 0:
        return 0, detail
    amount = Decimal(str(returned.get("amount", "0")))
    basis = min(done_amount + amount, base)
    target = _floor(Decimal(total) * basis / base)
    points = max(min(target, total) - done_points, 0)
    detail["amount_basis"] = str(basis - min(done_amount, base))
    return points, detail
