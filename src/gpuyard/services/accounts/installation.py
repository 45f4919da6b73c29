"""This installation's identity, kept in the database so that every server process on it (and
every restart) agrees."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from gpuyard.store.models import ServerSetting

KEY = "installation_id"


def installation_id(session: Session) -> str:
    """The installation's id, made on first use."""
    row = session.get(ServerSetting, KEY)
    if row is None:
        row = ServerSetting(key=KEY, value=uuid.uuid4().hex[:16])
        session.add(row)
        session.flush()
    return row.value
