"""Earning rules: versioned JSON rule sets, a pure engine, and the handlers that award points."""
