"""Member (customer) sign-in: magic links by email and member sessions for the portal and shop apps."""
