"""The machine fleet. Machines arrive with the instances work; until then the fleet is empty."""

from __future__ import annotations

from sqlalchemy.orm import Session


def gpu_names(session: Session) -> list[str]:
    """Distinct GPU model names of the registered machines, sorted."""
    return []
