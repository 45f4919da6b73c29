"""What a path that no route serves means: a mistyped id, or a call gpuyard does not serve.

Numeric ids in paths are declared ``{name:int}``, so ``PUT /api/v0/instances/filters`` is a
405 (only GET serves that path) and ``/api/v0/instances/abc`` matches no route. Before answering
404, :func:`explain` looks for a route that *would* match with anything in an id slot and says
what is wrong: a template hash where a numeric id belongs (400, with the teaching message), text
that is not an id (400), or a word: a Vast call gpuyard does not serve (404 ``not_supported``).
"""

from __future__ import annotations

import re
from functools import lru_cache

from fastapi import FastAPI
from fastapi.routing import APIRoute

from gpuyard.errors import GpuyardError, NotFound
from gpuyard.wire.types import to_id

SLOT = re.compile(r"\{(\w+):int\}")
WORD = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


@lru_cache(maxsize=64)
def _pattern(path: str) -> re.Pattern[str]:
    """``/api/v0/instances/{instance_id:int}`` → a regex with any segment in the id slot."""
    parts = SLOT.split(path)  # text, name, text, name, …, text
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)"
                    for i, part in enumerate(parts))
    return re.compile(f"^{regex}$")


def explain(app: FastAPI, method: str, path: str) -> GpuyardError:
    """The error for ``method path`` that no route serves."""
    routes = [r for r in getattr(app.state, "api_routes", ()) if isinstance(r, APIRoute)]
    for route in routes:
        if ":int}" not in route.path:
            continue
        methods, pattern = route.methods or set(), _pattern(route.path)
        match = pattern.match(path)
        if match is None or method not in methods:
            continue
        for name, value in match.groupdict().items():
            if WORD.match(value) and len(value) != 32:
                break  # a word: another call, not an id
            try:
                to_id(value, name.replace("_", " "))
            except GpuyardError as exc:  # the message for what was given
                return exc
    return NotFound(
        f"no such endpoint: gpuyard does not serve {method} {path}, a call of the Vast API it "
        "does not implement (see /docs for the calls it serves)",
        "not_supported",
    )



def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route serves ``path`` with (the ``Allow`` header of a 405)."""
    methods: set[str] = set()
    for route in getattr(app.state, "api_routes", ()):
        if isinstance(route, APIRoute) and route.path_regex.match(path):
            methods |= set(route.methods or ())
    return sorted(methods - {"HEAD"} if "GET" not in methods else methods)
