"""Fixtures of the service tests that build their own reconcilers."""

from __future__ import annotations

import pytest

from gpuyard.services.accounts.users import create_user
from gpuyard.store.db import transaction
from worker_pause import paused_worker


@pytest.fixture
def only_our_reconciler(app):
    """Pause the server's own background reconciler (if the live server runs), so that only
    the reconcilers a test builds act on the instances (``pytest.mark.usefixtures`` it)."""
    with paused_worker(app):
        yield


@pytest.fixture
def owner(app):
    """A user of their own, to rent with."""
    with transaction(app.state.sessions) as session:
        user, _key = create_user(session, "owner")
        return user
