"""Which tests the PostgreSQL pass of scripts/test runs (docs/testing.md)."""

# What the PostgreSQL pass runs (paths under tests/): everything that reads or writes the store
# through the API, the console or the services, and what only PostgreSQL has (roles, clusters,
# leases, the deployment recipes). The rest — the official client's wire format, the container
# engine, the SSH gateway's protocol, the browser, the CLI's output — does not depend on the
# database and runs on the SQLite pass only.
POSTGRESQL_PASS = (
    "api/", "control/", "query/", "sdk/", "services/", "store/", "web/", "deploy/",
    "cli/test_cluster.py", "cli/test_roles.py", "cli/test_serve_startup.py",
    "runtimes/test_cluster_engines.py",
    "gateway/test_port_claims.py",  # the gateway's ports in the database (its looks and claims)
)
