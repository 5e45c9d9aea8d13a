"""Plumbing shared by every domain: database, errors, pagination, clock, security, jobs, HTTP."""
