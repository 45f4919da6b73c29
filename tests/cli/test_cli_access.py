"""gpuyard admin list-keys / revoke-key / disable-user / enable-user against the test database,
while the test server runs: each change counts on the server's very next request."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from gpuyard.cli.main import main
from gpuyard.services.accounts.users import add_key, find_user
from gpuyard.store.db import transaction
from gpuyard.store.models import ApiKey, Instance
from instance_reads import PATIENCE, wait_status


@pytest.fixture
def admin(db_url, capsys):
    """``admin("revoke-key", "3")`` runs ``gpuyard admin revoke-key 3 --db URL`` in process;
    returns (exit status, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["admin", *args, "--db", db_url])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def key_ids(app, username: str) -> list[int]:
    with transaction(app.state.sessions, write=False) as session:
        user = find_user(session, username)
        return list(session.scalars(ApiKey.__table__.select().with_only_columns(ApiKey.id)
                                    .where(ApiKey.user_id == user.id).order_by(ApiKey.id)))


def whoami(account, key: str | None = None):
    with account.http() as client:
        if key is not None:
            client.headers["Authorization"] = f"Bearer {key}"
        return client.get("/api/v0/users/current/")


def test_list_then_revoke_a_key_which_is_refused_at_once(app, admin, alice, bob):
    assert whoami(bob).status_code == 200
    (key_id,) = key_ids(app, "bob")
    code, out, _ = admin("list-keys")
    assert code == 0 and re.search(rf"\b{key_id}\b.*\bbob\b.*enabled", out)
    assert "alice" in out and bob.key not in out

    code, out, _ = admin("revoke-key", str(key_id))
    assert code == 0 and out == f"Revoked API key {key_id} of user bob; it is refused from now on.\n"
    r = whoami(bob)
    assert r.status_code == 401
    body = r.json()
    assert body["success"] is False and body["error"] == "api_key_revoked"
    assert body["msg"].startswith("this API key was revoked on ") and "operator" in body["msg"]
    assert whoami(alice).status_code == 200

    code, out, _ = admin("revoke-key", str(key_id))
    assert code == 0 and "was already revoked on" in out and "nothing changed" in out
    code, out, _ = admin("list-keys", "--user", "bob")
    revoked_row = rf"\b{key_id}\b.*bob.*\d{{4}}-\d\d-\d\d.*\d{{4}}-\d\d-\d\d"  # made, revoked
    assert code == 0 and "alice" not in out and re.search(revoked_row, out)


def test_revoke_every_key_of_a_user(app, admin, alice, bob):
    with transaction(app.state.sessions) as session:
        second = add_key(session, find_user(session, "bob"))
    assert whoami(bob, second).status_code == 200
    ids = key_ids(app, "bob")
    code, out, _ = admin("revoke-key", "--user", "bob")
    assert code == 0
    assert out == f"Revoked 2 API key(s) of user bob (id {ids[0]}, {ids[1]}); they are refused from now on.\n"
    assert whoami(bob).status_code == 401 and whoami(bob, second).status_code == 401
    assert whoami(alice).status_code == 200
    code, out, _ = admin("revoke-key", "--user", "bob")
    assert code == 0 and "no API key left to revoke" in out

    code, out, _ = admin("create-key", "bob")  # a new key after the leak
    assert code == 0 and re.fullmatch(r"[0-9a-f]{64}\n", out)
    assert whoami(bob, out.strip()).json()["username"] == "bob"
    assert whoami(bob).status_code == 401


def test_disable_then_enable_a_user(admin, alice, bob):
    code, out, _ = admin("disable-user", "bob")
    assert code == 0 and out.startswith("Disabled user bob:")
    r = whoami(bob)
    assert r.status_code == 403
    body = r.json()
    assert body["success"] is False and body["error"] == "account_disabled"
    assert "'bob' is disabled" in body["msg"] and "contact the server's operator" in body["msg"]
    assert whoami(alice).status_code == 200
    code, out, _ = admin("list-keys", "--user", "bob")
    assert "disabled" in out
    code, out, _ = admin("disable-user", "bob")
    assert code == 0 and "was already disabled on" in out

    code, out, _ = admin("enable-user", "bob")
    assert code == 0 and out.startswith("Enabled user bob:")
    assert whoami(bob).status_code == 200
    code, out, _ = admin("enable-user", "bob")
    assert code == 0 and "is not disabled; nothing changed" in out


def test_disable_with_stop_stops_the_users_running_instances(app, admin, bob, fleet):
    with bob.http() as api:
        launched = []
        for _ in range(2):
            offer = api.post("/api/v0/bundles/", json={"num_gpus": {"eq": 1}}).json()["offers"][0]
            r = api.put(f"/api/v0/asks/{offer['id']}/", json={"client_id": "me", "image": "busybox",
                                                               "disk": 10})
            assert r.status_code == 200, r.text
            launched.append(r.json()["new_contract"])
        for iid in launched:
            wait_status(api, iid, "running")

    code, out, _ = admin("disable-user", "bob", "--stop")
    assert code == 0
    assert f"Stopping its running instance(s) {launched[0]}, {launched[1]} (disks kept)." in out
    deadline = time.time() + PATIENCE  # the server's reconciler stops them; bob cannot look now
    while True:
        with transaction(app.state.sessions, write=False) as session:
            states = {(i.intended_status, i.actual_status)
                      for i in session.query(Instance).filter(Instance.id.in_(launched))}
        if states == {("stopped", "stopped")}:
            break
        assert time.time() < deadline, states
        time.sleep(0.05)
    assert admin("enable-user", "bob")[0] == 0
    with bob.http() as api:
        for iid in launched:
            assert wait_status(api, iid, "stopped")["intended_status"] == "stopped"


@pytest.mark.parametrize("args, message", [
    (("revoke-key", "99999"), "there is no API key with id 99999"),
    (("revoke-key", "abc"), "an API key id is a number such as 12, not 'abc'"),
    (("revoke-key",), "name one key by its id"),
    (("revoke-key", "3", "--user", "bob"), "name one key by its id"),
    (("revoke-key", "--user", "nobody"), "there is no user named 'nobody'"),
    (("disable-user", "nobody"), "there is no user named 'nobody'"),
    (("enable-user", "nobody"), "there is no user named 'nobody'"),
    (("create-key", "nobody"), "there is no user named 'nobody'"),
    (("list-keys", "--user", "nobody"), "there is no user named 'nobody'"),
])
def test_mistakes_exit_1_with_a_clear_message(admin, bob, args, message):
    code, out, err = admin(*args)
    assert code == 1 and out == "" and err.startswith("Error: ") and message in err


def test_as_real_processes(tmp_path):
    db = f"sqlite:///{tmp_path / 'access.db'}"

    def gpuyard(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gpuyard.cli.main", "admin", *args, "--db", db],
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)

    assert gpuyard("create-user", "dana").returncode == 0
    listed = gpuyard("list-keys")
    assert listed.returncode == 0 and "dana" in listed.stdout
    assert gpuyard("revoke-key", "1").stdout == "Revoked API key 1 of user dana; it is refused from now on.\n"
    missing = gpuyard("disable-user", "erin")
    assert missing.returncode == 1 and "there is no user named 'erin'" in missing.stderr
