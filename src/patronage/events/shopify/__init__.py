"""Shopify webhooks: HMAC-verified, de-duplicated by webhook id, mapped onto orders and returns."""
