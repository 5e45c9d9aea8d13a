"""Server-rendered faces of Patronage: the admin console and (later) the member portal."""
