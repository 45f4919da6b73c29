"""The official ``vastai`` 1.9.1 SDK (``from vastai import VastAI``), unchanged, against a live
gpuyard server (VAST-WIRE §1-3, 8, 10). HOME and the XDG dirs point into ``tmp_path`` so no real
key file is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from vastai import VastAI

DEFAULT_FILTERS = {"verified": {"eq": True}, "external": {"eq": False}, "rentable": {"eq": True}}


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, live_server: str) -> None:
    home = tmp_path / "home"
    for var, sub in (("HOME", ""), ("XDG_CONFIG_HOME", "config"), ("XDG_CACHE_HOME", "cache"),
                     ("XDG_STATE_HOME", "state"), ("XDG_DATA_HOME", "data")):
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.setenv("VAST_URL", live_server)
    monkeypatch.delenv("VAST_API_KEY", raising=False)


def official(account) -> VastAI:
    return VastAI(api_key=account.key, server_url=account.url)


def http_error(call) -> tuple[int, str]:
    with pytest.raises(requests.HTTPError) as info:
        call()
    response = info.value.response
    return response.status_code, response.json()["msg"]


def make(sdk: VastAI, **kwargs) -> dict:
    body = sdk.create_template(**kwargs)
    assert body["success"] is True, body
    return body["template"]


def test_create_template_returns_the_body_with_the_stored_template(alice, api, stored):
    sdk = official(alice)
    body = sdk.create_template(
        name="sdk tpl",
        image="vllm/vllm-openai",
        image_tag="v0.6",
        env="-e MODEL_ID=meta/llama -p 8000:8000",
        ssh=True,
        direct=True,
        onstart_cmd="vllm serve $MODEL_ID",
        search_params="gpu_ram>=24 num_gpus=1 gpu_name=RTX_4090",
        disk_space=50,
        readme="# readme",
        desc="serves llama",
        login="-u me -p secret ghcr.io",
    )
    assert body["success"] is True and body["msg"]
    t = body["template"]
    assert isinstance(t["id"], int) and len(t["hash_id"]) == 32 and int(t["hash_id"], 16) >= 0
    assert t == stored(api, t["id"])
    assert t["creator_id"] == alice.id
    assert (t["name"], t["image"], t["tag"]) == ("sdk tpl", "vllm/vllm-openai", "v0.6")
    assert t["env"] == "-e MODEL_ID=meta/llama -p 8000:8000"
    assert (t["runtype"], t["use_ssh"], t["ssh_direct"]) == ("ssh", True, True)
    assert t["docker_login_repo"] == "-u"
    assert t["recommended_disk_space"] == 50.0
    # the SDK seeds the three defaults because search_params was given; "1" arrives as a string
    assert t["extra_filters"] == {
        **DEFAULT_FILTERS,
        "gpu_ram": {"gte": 24000.0},
        "num_gpus": {"eq": 1},
        "gpu_name": {"eq": "RTX 4090"},
    }

    # no search_params: the SDK sends no filters at all; raw api fields override the flags
    bare = make(sdk, name="jupyter one", image="jupyter/base", runtype="jupyter", use_ssh=True,
                jup_direct=True, private=False)
    assert bare["extra_filters"] == {}
    assert (bare["runtype"], bare["use_ssh"], bare["jup_direct"]) == ("jupyter", True, True)
    assert bare["private"] is False and bare["id"] != t["id"]


def test_search_templates_with_a_query_string_or_dict(alice, bob, set_count_created):
    sdk = official(alice)
    ssh = make(sdk, name="ssh", image="img", ssh=True)
    args = make(sdk, name="args", image="img")
    hidden = make(official(bob), name="bob private", image="img", ssh=True)
    shared = make(official(bob), name="bob public", image="img", ssh=True, public=True)
    set_count_created(ssh["id"], 120)

    rows = sdk.search_templates("count_created >= 0 use_ssh == True")
    assert isinstance(rows, list)
    assert [r["id"] for r in rows] == [ssh["id"], shared["id"]]
    assert rows[0] == {**ssh, "count_created": 120}

    assert [r["id"] for r in sdk.search_templates({"count_created": {"gt": 100}})] == [ssh["id"]]
    assert [r["id"] for r in sdk.search_templates()] == [ssh["id"], args["id"], shared["id"]]
    # bob's private template is his alone
    assert sdk.search_templates("name=bob_private") == []
    assert [r["id"] for r in official(bob).search_templates("use_ssh=True")] == [
        hidden["id"], shared["id"],
    ]


def test_update_template_by_hash_gives_a_new_hash_and_keeps_the_id(alice, api, stored):
    sdk = official(alice)
    t0 = make(sdk, name="orig", image="img", image_tag="1.0", env="-e A=1", onstart_cmd="echo hi",
              ssh=True, direct=True, search_params="num_gpus=2", disk_space=20.0, readme="R",
              desc="D", login="ghcr.io -u x")
    body = sdk.update_template(hash_id=t0["hash_id"], name="renamed", image="img2", ssh=True,
                               direct=True)
    assert body["success"] is True and body["msg"]
    t1 = body["template"]
    assert t1["id"] == t0["id"] and t1["hash_id"] != t0["hash_id"]
    assert (t1["name"], t1["image"]) == ("renamed", "img2")
    for key in ("tag", "env", "onstart", "readme", "desc", "docker_login_repo",
                "recommended_disk_space"):  # null on the wire: kept
        assert t1[key] == t0[key], key
    assert (t1["runtype"], t1["use_ssh"], t1["ssh_direct"]) == ("ssh", True, True)
    assert t1["extra_filters"] == {}  # the SDK sends {} without search_params
    assert stored(api, t0["id"]) == t1

    # positional hash (the old one still names the template) and raw api fields
    t2 = sdk.update_template(t0["hash_id"], runtype="jupyter", use_ssh=True, jup_direct=True)[
        "template"
    ]
    assert t2["id"] == t0["id"] and t2["hash_id"] not in (t0["hash_id"], t1["hash_id"])
    assert (t2["name"], t2["image"], t2["runtype"], t2["jup_direct"]) == (
        "renamed", "img2", "jupyter", True,
    )
    # the old hash still resolves to the exact old content
    old = api.get(f"/api/v0/template/hash/{t0['hash_id']}/").json()["template"]
    assert (old["name"], old["image"], old["template_id"]) == ("orig", "img", t0["id"])

    with pytest.raises(ValueError, match="No template found"):
        sdk.update_template("0" * 31 + "1", name="x")


def test_update_picks_the_callers_own_template_when_a_public_one_shares_the_hash(alice, bob, api, stored):
    theirs = make(official(bob), name="same", image="img", public=True)
    mine = make(official(alice), name="same", image="img", public=True)
    assert mine["hash_id"] == theirs["hash_id"] and mine["id"] > theirs["id"]

    t = official(alice).update_template(mine["hash_id"], name="mine now", image="img", public=True)
    assert t["template"]["id"] == mine["id"] and t["template"]["name"] == "mine now"
    with bob.http() as b:
        assert stored(b, theirs["id"]) == theirs


def test_update_by_hash_edits_the_template_that_currently_has_that_hash(alice, api, stored):
    sdk = official(alice)
    older = make(sdk, name="shape x", image="img")
    h = older["hash_id"]
    sdk.update_template(h, name="shape y", image="img")  # `older` moves on to a new hash
    current = make(sdk, name="shape x", image="img")  # same content again: a new template with h
    assert current["hash_id"] == h and current["id"] != older["id"]

    edited = sdk.update_template(h, name="edited", image="img")["template"]
    assert edited["id"] == current["id"]
    assert stored(api, older["id"])["name"] == "shape y"


def test_delete_template_by_id_and_by_hash(alice, api):
    sdk = official(alice)
    a = make(sdk, name="a", image="img")
    b = make(sdk, name="b", image="img")

    body = sdk.delete_template(template_id=a["id"])
    assert body["success"] is True and f"Template {a['id']} deleted" in body["msg"]
    body = sdk.delete_template(hash_id=b["hash_id"])
    assert body["success"] is True and f"Template {b['id']} deleted" in body["msg"]
    assert sdk.search_templates() == []

    status, msg = http_error(lambda: sdk.delete_template(template_id=a["id"]))
    assert status == 404 and str(a["id"]) in msg


def test_show_user(alice):
    me = official(alice).show_user()
    assert me["id"] == alice.id and me["username"] == "alice"
    assert "api_key" not in me and alice.key not in json.dumps(me)
    assert me["host_agreement_accepted"] is False


def test_server_errors_raise_http_error_with_msg(alice, bob, live_server):
    sdk = official(alice)
    t = make(sdk, name="t", image="img", public=True)

    status, msg = http_error(lambda: sdk.update_template(str(t["id"]), name="x"))
    assert status == 400 and "numeric template id" in msg

    status, msg = http_error(lambda: sdk.delete_template())
    assert status == 400 and "template_id" in msg and "hash_id" in msg

    status, msg = http_error(lambda: sdk.create_template(name="x", image="img", env={"A": "1"}))
    assert status == 400 and "-e A=1" in msg

    status, msg = http_error(lambda: official(bob).update_template(t["hash_id"], name="x"))
    assert status == 403 and "only its creator" in msg

    status, msg = http_error(VastAI(api_key="0" * 64, server_url=live_server).show_user)
    assert status == 401 and "invalid API key" in msg
    assert sdk.search_templates() == [t]  # nothing was changed by the refused calls
