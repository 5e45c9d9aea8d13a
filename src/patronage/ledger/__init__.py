"""The points ledger: double-entry, append-only, with lots, pending points, expiry and claw-backs."""
