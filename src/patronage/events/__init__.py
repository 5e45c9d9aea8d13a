"""What customers do: products, orders and returns, behavioural events; ingestion and idempotency."""
