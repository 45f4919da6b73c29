"""Account secrets over HTTP (VAST-WIRE §14): one path for the four methods, every bound a 400
that teaches, encrypted at rest (no plain value in the database, on SQLite or PostgreSQL), never
shown to another user, never on an instance row; injected into new containers below the
request's and the template's env; the dry run names them with masked values."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gpuyard.services.accounts import secrets as svc
from gpuyard.store.crypto import PREFIX
from gpuyard.store.db import transaction
from gpuyard.store.models import Instance
from instance_reads import wait_status

VALUE = "hf_Zq81-value-kept-secret"
PATH = "/api/v0/secrets/"


def put(api, method: str, **body):
    return api.request(method, PATH, json=body)


def sqlite_bytes(db_url: str) -> bytes | None:
    from pathlib import Path

    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.get_backend_name() != "sqlite":
        return None
    path = Path(url.database)
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def test_create_list_update_delete(api):
    assert api.get(PATH).json() == {"success": True, "secrets": {}}
    r = put(api, "POST", key="HF_TOKEN", value=VALUE)
    assert r.status_code == 200
    assert r.json() == {"success": True, "key": "HF_TOKEN",
                        "msg": "Environment variable HF_TOKEN created: new instances get it in their env"}
    assert put(api, "POST", key="A_NUMBER", value=42).status_code == 200  # a number is its text
    assert put(api, "POST", key="EMPTY", value="").status_code == 200
    assert api.get(PATH).json()["secrets"] == {"A_NUMBER": "42", "EMPTY": "", "HF_TOKEN": VALUE}

    r = put(api, "POST", key="HF_TOKEN", value="other")
    assert r.status_code == 409 and r.json()["error"] == "secret_exists"
    assert "update env-var HF_TOKEN VALUE" in r.json()["msg"]

    r = put(api, "PUT", key="HF_TOKEN", value="hf_new")
    assert r.status_code == 200 and r.json()["success"] is True and "updated" in r.json()["msg"]
    assert api.get(PATH).json()["secrets"]["HF_TOKEN"] == "hf_new"
    for method, body in (("PUT", {"key": "NOPE", "value": "x"}), ("DELETE", {"key": "NOPE"})):
        r = api.request(method, PATH, json=body)
        assert r.status_code == 404 and r.json()["error"] == "secret_not_found"
        assert "create env-var NOPE VALUE" in r.json()["msg"]
    r = put(api, "DELETE", key="HF_TOKEN")
    assert r.status_code == 200 and "deleted" in r.json()["msg"]
    assert set(api.get(PATH).json()["secrets"]) == {"A_NUMBER", "EMPTY"}


@pytest.mark.parametrize(("method", "body", "words"), [
    ("POST", {"key": "1ABC", "value": "x"}, "not an env variable name"),
    ("POST", {"key": "A-B", "value": "x"}, "not an env variable name"),
    ("POST", {"key": "A\n", "value": "x"}, "not an env variable name"),
    ("POST", {"key": "", "value": "x"}, "not an env variable name"),
    ("POST", {"key": "A" * 101, "value": "x"}, "101 characters long; the limit is 100"),
    ("POST", {"key": 5, "value": "x"}, "must be a string such as HF_TOKEN, not a number"),
    ("POST", {"value": "x"}, "key is required"),
    ("POST", {"key": "A"}, "value is required"),
    ("POST", {"key": "A", "value": None}, "value is required"),
    ("POST", {"key": "A", "value": True}, "value must be a string, not a boolean"),
    ("POST", {"key": "A", "value": ["x"]}, "value must be a string, not a list"),
    ("POST", {"key": "A", "value": "x", "extra": 1},
     "unknown secret key(s): extra. Accepted keys: key, value"),
    ("PUT", {"key": "A"}, "value is required"),
    ("DELETE", {}, "key is required"),
    ("DELETE", {"key": "A", "value": "x"}, "unknown secret key(s): value"),
])
def test_every_bound_is_a_400_that_teaches(api, method, body, words):
    r = api.request(method, PATH, json=body)
    assert r.status_code == 400 and words in r.json()["msg"], r.text


def test_a_long_value_is_refused_without_being_repeated(api):
    value = "s3cr3t" * 6000  # 36,000 characters
    r = put(api, "POST", key="BIG", value=value)
    assert r.status_code == 400
    assert r.json()["msg"].startswith("value is 36000 characters long; the limit is 32768")
    assert "s3cr3t" not in r.text
    assert put(api, "POST", key="BIG", value="x" * 32 * 1024).status_code == 200


def test_an_account_keeps_at_most_so_many(api, monkeypatch):
    monkeypatch.setattr(svc, "MAX_SECRETS", 2)
    assert put(api, "POST", key="A", value="1").status_code == 200
    assert put(api, "POST", key="B", value="2").status_code == 200
    r = put(api, "POST", key="C", value="3")
    assert r.status_code == 400 and r.json()["error"] == "too_many_secrets"


def test_secrets_are_their_owners_alone(api, bob):
    assert put(api, "POST", key="HF_TOKEN", value=VALUE).status_code == 200
    with bob.http() as bob_api:
        assert bob_api.get(PATH).json()["secrets"] == {}
        assert put(bob_api, "PUT", key="HF_TOKEN", value="x").status_code == 404
        assert put(bob_api, "DELETE", key="HF_TOKEN").status_code == 404
        assert put(bob_api, "POST", key="HF_TOKEN", value="bobs").status_code == 200  # his own
        assert bob_api.get(PATH).json()["secrets"] == {"HF_TOKEN": "bobs"}
    assert api.get(PATH).json()["secrets"] == {"HF_TOKEN": VALUE}


def test_values_are_encrypted_at_rest(app, api, db_url):
    assert put(api, "POST", key="HF_TOKEN", value=VALUE).status_code == 200
    assert put(api, "PUT", key="HF_TOKEN", value=VALUE + "2").status_code == 200
    with app.state.engine.connect() as conn:
        rows = conn.execute(text("SELECT name, value FROM secrets")).all()
    assert [r[0] for r in rows] == ["HF_TOKEN"]
    assert rows[0][1].startswith(PREFIX) and VALUE not in rows[0][1]
    raw = sqlite_bytes(db_url)
    assert raw is None or VALUE.encode() not in raw
    assert api.get(PATH).json()["secrets"]["HF_TOKEN"] == VALUE + "2"


TEMPLATE_ENV = "-e FROM_TEMPLATE=template -e SHARED=template -p 8000:8000"


def rent(api, **body) -> tuple[int, dict]:
    offers = api.post("/api/v0/bundles/", json={"order": [["id", "asc"]]}).json()["offers"]
    r = api.put(f"/api/v0/asks/{offers[0]['id']}/", json={"client_id": "me", "disk": 10, **body})
    assert r.status_code == 200, r.text
    return r.json().get("new_contract"), r.json()


def container_spec(app, api, instance_id: int):
    wait_status(api, instance_id, "running", timeout=5)
    with transaction(app.state.sessions, write=False) as session:
        ref = session.get(Instance, instance_id).runtime_ref
    return app.state.runtimes["simulated"]._boxes[ref].spec


def test_secrets_join_the_env_below_the_request_and_the_template(app, api, fleet, db_url):
    tpl = api.post("/api/v0/template/", json={"image": "busybox", "env": TEMPLATE_ENV}).json()["template"]
    for name in ("FROM_TEMPLATE", "FROM_REQUEST", "HF_TOKEN", "WANDB_KEY"):
        assert put(api, "POST", key=name, value=f"{VALUE}-{name}").status_code == 200
    launch = {"template_hash_id": tpl["hash_id"], "env": {"FROM_REQUEST": "request", "SHARED": "request"}}

    _none, dry = rent(api, dry_run=True, **launch)
    preview = dry["launch"]
    assert preview["secrets"] == {"HF_TOKEN": "*****", "WANDB_KEY": "*****"}  # names, masked
    assert VALUE not in str(dry)

    iid, _answer = rent(api, **launch)
    spec = container_spec(app, api, iid)
    assert spec.env == {"FROM_TEMPLATE": "template", "SHARED": "request", "FROM_REQUEST": "request",
                        "HF_TOKEN": f"{VALUE}-HF_TOKEN", "WANDB_KEY": f"{VALUE}-WANDB_KEY"}
    assert VALUE not in repr(spec)  # a log line showing the spec shows no value

    for path in (f"/api/v0/instances/{iid}/", "/api/v1/instances/", "/api/v0/instances/"):
        assert VALUE not in api.get(path, params={"owner": "me"} if "v0" in path else None).text
    with app.state.engine.connect() as conn:
        stored = " ".join(str(row) for table in ("instances", "instance_events")
                          for row in conn.execute(text(f"SELECT * FROM {table}")))
    assert VALUE not in stored and "HF_TOKEN" in stored  # the names it got, not the values
    with transaction(app.state.sessions, write=False) as session:
        assert session.get(Instance, iid).launch["secrets"] == ["HF_TOKEN", "WANDB_KEY"]
    raw = sqlite_bytes(db_url)
    assert raw is None or VALUE.encode() not in raw


def test_a_recreated_container_gets_the_values_of_then(app, api, fleet):
    assert put(api, "POST", key="HF_TOKEN", value="first").status_code == 200
    assert put(api, "POST", key="GONE", value="soon").status_code == 200
    iid, _ = rent(api, image="busybox")
    assert container_spec(app, api, iid).env == {"HF_TOKEN": "first", "GONE": "soon"}

    assert put(api, "PUT", key="HF_TOKEN", value="second").status_code == 200
    assert put(api, "DELETE", key="GONE").status_code == 200
    assert put(api, "POST", key="ADDED", value="later").status_code == 200
    r = api.put(f"/api/v0/instances/recycle/{iid}/", json={})
    assert r.status_code == 200, r.text
    assert container_spec(app, api, iid).env == {"HF_TOKEN": "second", "ADDED": "later"}
