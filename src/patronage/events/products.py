"""The product catalogue: upsert by sku (idempotent), reads. Never commits."""

from __future__ import annotations

from sqlalchemy.orm import Session

from patronage.events.models import Product
from patronage.events.repository import ProductRepository
from patronage.events.schemas import Outcome, ProductIn
from patronage.kit.errors import NotFound

FIELDS = ("name", "category", "price", "tags", "active")


def upsert_product(session: Session, workspace_id: int, data: ProductIn) -> tuple[Outcome, Product]:
    """Create the product or replace its fields; the same body again is ``unchanged``."""
    repo = ProductRepository(session, workspace_id)
    product = repo.by_sku(data.sku)
    values = {f: getattr(data, f) for f in FIELDS}
    if product is None:
        return "created", repo.new(sku=data.sku, **values)
    changed = [f for f, v in values.items() if getattr(product, f) != v]
    if not changed:
        return "unchanged", product
    for f in changed:
        setattr(product, f, values[f])
    session.flush()
    return "updated", product


def get_product(session: Session, workspace_id: int, sku: str) -> Product:
    product = ProductRepository(session, workspace_id).by_sku(sku)
    if product is None:
        raise NotFound(f"product {sku!r} not found")
    return product
