"""The member portal at /portal/{slug}/: magic-link sign-in, points, tier, rewards, referrals, profile."""
