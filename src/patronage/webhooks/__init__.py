"""Outgoing webhooks: signed, retried, logged deliveries of domain events to workspaces' endpoints."""
