"""Bulk import of customers, orders, returns and events from CSV or JSON Lines files (streaming)."""
