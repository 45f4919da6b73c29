"""Reading an instance back through the raw API, and waiting for a status: shared by the API,
compatibility and runtime tests.

A wait ends on the outcome it waits for; its timeout only bounds a test that is failing anyway,
so it is generous (a short one is a race on a loaded machine)."""

from __future__ import annotations

import time

import httpx

PATIENCE = 60.0  # seconds before a wait gives up


def show(client: httpx.Client, instance_id: int) -> dict | None:
    """``GET /api/v0/instances/{id}/?owner=me``'s instance (None when not the caller's)."""
    r = client.get(f"/api/v0/instances/{instance_id}/", params={"owner": "me"})
    assert r.status_code == 200, r.text
    return r.json()["instances"]


def wait_status(client: httpx.Client, instance_id: int, status: str,
                timeout: float = PATIENCE) -> dict:
    """The instance once its ``actual_status`` reads ``status``; fails after ``timeout`` s."""
    deadline = time.time() + timeout
    while True:
        row = show(client, instance_id)
        if row["actual_status"] == status:
            return row
        assert time.time() < deadline, row
        time.sleep(0.02)
