"""Customer profiles, identities, consent and preferences, timeline, lifecycle stage, GDPR."""
