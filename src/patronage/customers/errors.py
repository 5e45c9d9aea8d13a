"""Errors of the customers domain, each with a stable code."""

from __future__ import annotations

from patronage.kit.errors import Conflict


class CustomerMerged(Conflict):
    code = "customer_merged"
    title = "This customer was merged into another profile"

    def __init__(self, customer_id: int, merged_into_id: int) -> None:
        super().__init__(
            f"customer {customer_id} was merged into customer {merged_into_id}; use that profile",
            merged_into_id=merged_into_id,
        )


class CustomerErased(Conflict):
    code = "customer_erased"
    title = "This customer's personal data was erased"

    def __init__(self, customer_id: int) -> None:
        super().__init__(f"customer {customer_id} was erased; its profile can no longer change")


class IdentityTaken(Conflict):
    code = "identity_taken"
    title = "This identifier already belongs to another customer"

    def __init__(self, field: str, owner_id: int) -> None:
        message = f"already identifies customer {owner_id}; merge the two profiles instead"
        super().__init__(
            f"{field}: {message}",
            customer_id=owner_id,
            errors=[{"field": field, "message": message, "type": "identity_taken"}],
        )
