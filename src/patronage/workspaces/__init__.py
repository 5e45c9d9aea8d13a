"""Tenants (workspaces), staff users and their roles, API keys and browser sessions."""
