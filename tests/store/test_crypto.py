"""Registry logins are encrypted at rest: the database never holds the password, answers never
carry it, and the runtime gets it back in plain text. Plain values from before are encrypted at
start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import undefer

from gpuyard.api.app import create_app
from gpuyard.server_secret import ServerSecret
from gpuyard.settings import Settings
from gpuyard.store.crypto import PREFIX, Cipher, CryptoError
from gpuyard.store.db import transaction
from gpuyard.store.models import Instance
from instance_reads import wait_status

PASSWORD = "pw-Zq81-kept-secret"
LOGIN = f"-u bob -p {PASSWORD} docker.io"


def stored_logins(app) -> list[str]:
    """``instances.image_login`` as the database holds it (a plain SQL select)."""
    with app.state.engine.connect() as conn:
        rows = conn.execute(text("SELECT image_login FROM instances WHERE image_login IS NOT NULL"))
        return [value for (value,) in rows]


def sqlite_file_bytes(db_url: str) -> bytes | None:
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite":
        return None
    path = Path(url.database)
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def rent(api, **body) -> int:
    offers = api.post("/api/v0/bundles/", json={"order": [["id", "asc"]]}).json()["offers"]
    r = api.put(f"/api/v0/asks/{offers[0]['id']}/", json={"client_id": "me", "image": "busybox",
                                                          "disk": 10, **body})
    assert r.status_code == 200, r.text
    return r.json()["new_contract"]


def test_a_registry_login_is_stored_encrypted_and_the_runtime_gets_it_back(app, api, fleet, db_url):
    iid = rent(api, image_login=LOGIN)

    (stored,) = stored_logins(app)
    assert stored.startswith(PREFIX) and PASSWORD not in stored
    raw = sqlite_file_bytes(db_url)
    assert raw is None or PASSWORD.encode() not in raw
    for path in ("/api/v0/instances/", f"/api/v0/instances/{iid}/"):
        answer = api.get(path, params={"owner": "me"})
        assert answer.status_code == 200 and PASSWORD not in answer.text
        assert "image_login" not in answer.text

    wait_status(api, iid, "running")
    with transaction(app.state.sessions, write=False) as session:
        ref = session.get(Instance, iid).runtime_ref
    spec = app.state.runtimes["simulated"]._boxes[ref].spec  # what the reconciler launched
    assert spec.image_login == LOGIN
    assert PASSWORD not in repr(spec)  # a log line showing the spec shows no password


def test_plain_logins_from_before_are_encrypted_at_start_up(app, api, fleet, db_url, data_dir):
    old_password = "pw-from-an-older-release"  # not PASSWORD: this one does reach the file
    old_login = f"-u bob -p {old_password} docker.io"
    iid = rent(api)
    with app.state.engine.begin() as conn:  # as an older release stored it
        conn.execute(text("UPDATE instances SET image_login = :v WHERE id = :i"),
                     {"v": old_login, "i": iid})
    with transaction(app.state.sessions, write=False) as session:  # readable meanwhile
        inst = session.get(Instance, iid, options=[undefer(Instance.image_login)])
        assert inst.image_login == old_login

    restarted = create_app(Settings.build(db_url=db_url, data_dir=data_dir, sim_boot_seconds=0))
    try:
        (stored,) = stored_logins(restarted)
        assert stored.startswith(PREFIX) and old_password not in stored
        with transaction(restarted.state.sessions, write=False) as session:
            inst = session.get(Instance, iid, options=[undefer(Instance.image_login)])
            assert inst.image_login == old_login
    finally:
        restarted.state.engine.dispose()


def test_values_encrypted_with_another_secret_are_refused_with_a_hint():
    mine = Cipher.from_secret(ServerSecret(b"a" * 64, "test"))
    other = Cipher.from_secret(ServerSecret(b"b" * 64, "test"))
    token = mine.encrypt(LOGIN)
    assert token != mine.encrypt(LOGIN)  # a fresh IV each time: equal logins look different
    assert mine.decrypt(token) == LOGIN
    with pytest.raises(CryptoError, match="GPUYARD_SECRET_KEY"):
        other.decrypt(token)
