"""The worker role's parts: per-instance leases, engine heartbeats, and the role's wiring
(docs/architecture.md, "Roles")."""
