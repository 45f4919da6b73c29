"""Jupyter on jupyter-runtype instances (``jupyter``, ``jupyter_proxy ssh_proxy``, ``jupyter_direc
ssh_direc ssh_proxy``): the token made at rental (kept encrypted in the instance row) and the
address the row shows. The docker runtime starts Jupyter itself (runtimes/docker.py); the
simulated runtime runs none, and its rows show no address."""

from __future__ import annotations

import secrets

PORT_KEY = "8080/tcp"  # the container port Jupyter listens on, published like any other


def wanted(runtype: str | None) -> bool:
    return "jupyter" in (runtype or "")


def new_token(runtype: str | None) -> str | None:
    """A fresh token for a jupyter runtype (64 hex digits, as Vast's), else None."""
    return secrets.token_hex(32) if wanted(runtype) else None


def url(address: str | None, host_port: int | None, token: str | None) -> str | None:
    """Where the instance's Jupyter answers, token included (None while there is none)."""
    if not (address and host_port and token):
        return None
    return f"http://{address}:{host_port}/?token={token}"
