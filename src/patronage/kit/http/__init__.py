"""HTTP plumbing: the unit-of-work route, problem+json rendering, middleware, dependencies."""
