"""The typed wire: pydantic models of what the Vast-compatible API reads and answers.

Shared by the API (as request bodies, query arguments and documented answers) and the services
(which receive these typed, already-validated values instead of raw dicts). Nothing here knows
HTTP or the database: a model checks the *shape* of its input (types, bounds, the Vast quirks
such as numbers sent as strings) and turns it into typed values; lookups and rules that need
stored state stay in the services. See docs/architecture.md, "The typed edge".
"""
