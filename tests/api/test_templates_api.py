"""Templates over raw HTTP: the wire shapes of VAST-WIRE §3 and DESIGN §3's rules."""

from __future__ import annotations

import json

import httpx
import pytest

VLLM = {
    "name": "vLLM Inference Server",
    "image": "vllm/vllm-openai",
    "tag": "latest",
    "env": "-e MODEL_ID=deepseek-ai/DeepSeek-R1-Distill-Llama-8B -p 8000:8000",
    "onstart": 'echo "Starting vLLM server"; vllm serve $MODEL_ID',
    "recommended_disk_space": "50",
    "runtype": "ssh",
    "use_ssh": True,
    "ssh_direct": True,
}

ROW_KEYS = {
    "id", "hash_id", "creator_id", "created_at", "count_created", "recent_create_date",
    "recommended", "default_tag", "volume_info", "name", "image", "tag", "desc", "readme",
    "readme_visible", "env", "onstart", "runtype", "args_str", "use_ssh", "ssh_direct",
    "jup_direct", "jupyter_dir", "use_jupyter_lab", "docker_login_repo", "extra_filters",
    "recommended_disk_space", "href", "repo", "private",
}


def create(client: httpx.Client, **overrides) -> dict:
    r = client.post("/api/v0/template/", json={**VLLM, **overrides})
    assert r.status_code == 200, r.text
    return r.json()["template"]


def search(client: httpx.Client, filters: dict | None = None, **params) -> httpx.Response:
    q = {"select_cols": json.dumps(["*"]), "select_filters": json.dumps(filters or {})}
    q.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()})
    return client.get("/api/v0/template/", params=q)


def test_create_answers_success_msg_and_every_field(api):
    r = api.post("/api/v0/template/", json=VLLM)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["success"] is True and body["msg"]
    t = body["template"]
    assert set(t) == ROW_KEYS
    assert isinstance(t["id"], int)
    assert len(t["hash_id"]) == 32 and int(t["hash_id"], 16) >= 0
    assert t["count_created"] == 0 and t["recent_create_date"] is None
    assert t["private"] is True  # private by default
    assert t["recommended_disk_space"] == 50.0  # the CLI's string "50" becomes a number
    assert t["tag"] == "latest" and t["default_tag"] == "latest"
    assert t["env"] == VLLM["env"]


def test_paths_work_with_and_without_trailing_slash(api):
    a = api.post("/api/v0/template", json=VLLM)
    b = api.get("/api/v0/template", params={"select_filters": "{}"})
    assert a.status_code == 200 and b.status_code == 200
    assert [t["id"] for t in b.json()["templates"]] == [a.json()["template"]["id"]]


def test_missing_or_wrong_key_is_401_with_msg(live_server):
    r = httpx.get(f"{live_server}/api/v0/template/")
    assert r.status_code == 401 and "Authorization: Bearer" in r.json()["msg"]
    r = httpx.get(f"{live_server}/api/v0/users/current", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["success"] is False and "invalid API key" in r.json()["msg"]


def test_identical_content_twice_returns_the_existing_template(api, bob):
    first = create(api)
    r = api.post("/api/v0/template/", json=VLLM)
    again = r.json()
    assert again["template"]["id"] == first["id"]
    assert "already have" in again["msg"]
    # another user with the same content gets the same hash but a template of their own
    with bob.http() as b:
        theirs = create(b)
    assert theirs["hash_id"] == first["hash_id"] and theirs["id"] != first["id"]


def test_private_templates_are_only_searchable_by_their_creator(api, bob):
    mine = create(api, name="secret")
    public = create(api, name="shared", private=False)
    with bob.http() as b:
        seen = [t["id"] for t in search(b).json()["templates"]]
    assert seen == [public["id"]]
    own = [t["id"] for t in search(api).json()["templates"]]
    assert own == [mine["id"], public["id"]]


def test_search_filters_order_and_limit_run_in_the_database(api, set_count_created):
    for i, count in enumerate([5, 150, 300, 101]):
        t = create(api, name=f"t{i}", use_ssh=i % 2 == 1)
        set_count_created(t["id"], count)  # bookkeeping: no API sets it
    r = search(api, {"count_created": {"gt": "100"}, "use_ssh": {"eq": True}},
               order_by=[["count_created", "desc"]], limit=5)
    names = [t["name"] for t in r.json()["templates"]]
    assert names == ["t1", "t3"]
    r = search(api, {"count_created": {"gte": 5}}, order_by=[{"col": "count_created", "dir": "asc"}],
               limit=2)
    assert [t["name"] for t in r.json()["templates"]] == ["t0", "t3"]


def test_order_by_hash_and_name(api):
    hashes = sorted(create(api, name=n)["hash_id"] for n in ("x", "y", "z"))
    rows = search(api, order_by=[["hash_id", "desc"]]).json()["templates"]
    assert [r["hash_id"] for r in rows] == hashes[::-1]
    rows = search(api, order_by=[["name", "asc"]], limit=2).json()["templates"]
    assert [r["name"] for r in rows] == ["x", "y"]


def test_select_cols_projects_rows(api):
    create(api)
    r = search(api, select_cols=["id", "hash_id"])
    assert r.status_code == 200 and set(r.json()["templates"][0]) == {"id", "hash_id"}
    bad = search(api, select_cols=["id", "nope"])
    assert bad.status_code == 400 and "nope" in bad.json()["msg"]


@pytest.mark.parametrize(
    "filters, needle",
    [
        ({"nosuchfield": {"eq": 1}}, "nosuchfield"),
        ({"count_created": {"like": 1}}, "like"),
        ({"count_created": {"gt": "lots"}}, "count_created"),
        ({"use_ssh": {"eq": "maybe"}}, "use_ssh"),
    ],
)
def test_bad_queries_are_400_naming_the_clause(api, filters, needle):
    r = search(api, filters)
    assert r.status_code == 400
    body = r.json()
    assert body["success"] is False and needle in body["msg"]


def test_bad_json_in_query_args_is_400(api):
    r = api.get("/api/v0/template/", params={"select_filters": "{not json"})
    assert r.status_code == 400 and "select_filters" in r.json()["msg"]


def test_edit_by_hash_changes_only_given_fields_and_keeps_id(api):
    t = create(api)
    r = api.put("/api/v0/template/", json={"hash_id": t["hash_id"], "name": "renamed"})
    assert r.status_code == 200
    new = r.json()["template"]
    assert new["id"] == t["id"] and new["hash_id"] != t["hash_id"]
    assert new["name"] == "renamed" and new["image"] == t["image"] and new["env"] == t["env"]
    assert new["use_ssh"] is True and new["ssh_direct"] is True
    # the old hash still resolves to the old content
    old = api.get(f"/api/v0/template/hash/{t['hash_id']}/").json()["template"]
    assert old["name"] == VLLM["name"] and old["template_id"] == t["id"]


def test_edit_flags_merge_with_the_stored_ones(api):
    t = create(api)
    r = api.put("/api/v0/template/", json={"hash_id": t["hash_id"], "direct": False})
    new = r.json()["template"]
    assert new["runtype"] == "ssh" and new["use_ssh"] is True and new["ssh_direct"] is False


def test_edit_v1_by_id_and_hash_with_full_payload(api):
    t = create(api)
    payload = {**VLLM, "id": t["id"], "hash_id": t["hash_id"], "name": "v1 edit", "image": None}
    r = api.put("/api/v1/template/", json=payload)
    assert r.status_code == 200, r.text
    new = r.json()["template"]
    assert new["id"] == t["id"] and new["name"] == "v1 edit"
    assert new["image"] == "vllm/vllm-openai"  # null means "not given" on this wire


def test_edit_without_change_keeps_hash(api):
    t = create(api)
    r = api.put("/api/v0/template/", json={"hash_id": t["hash_id"], "name": VLLM["name"]})
    assert r.json()["template"]["hash_id"] == t["hash_id"] and "Nothing changed" in r.json()["msg"]


def test_only_the_creator_edits(api, bob):
    t = create(api, private=False)
    with bob.http() as b:
        r = b.put("/api/v0/template/", json={"hash_id": t["hash_id"], "name": "mine now"})
        assert r.status_code == 403 and "only its creator" in r.json()["msg"]
        r = b.put("/api/v1/template/", json={"id": t["id"], "hash_id": t["hash_id"], "name": "x"})
        assert r.status_code == 403
        r = b.request("DELETE", "/api/v0/template/", json={"template_id": t["id"]})
        assert r.status_code == 403
    private = create(api, name="hidden")
    with bob.http() as b:
        r = b.put("/api/v0/template/", json={"hash_id": private["hash_id"], "name": "x"})
        assert r.status_code == 404  # a private template does not even exist for others


def test_versions_list_every_hash_newest_first(api):
    t = create(api)
    h1 = t["hash_id"]
    h2 = api.put("/api/v0/template/", json={"hash_id": h1, "name": "two"}).json()["template"]["hash_id"]
    h3 = api.put("/api/v0/template/", json={"hash_id": h2, "name": "three"}).json()["template"]["hash_id"]
    r = api.get(f"/api/v0/template/{t['id']}/versions/")
    assert r.status_code == 200
    versions = r.json()["versions"]
    assert [v["hash_id"] for v in versions] == [h3, h2, h1]
    assert [v["current"] for v in versions] == [True, False, False]
    assert versions[2]["content"]["name"] == VLLM["name"]


def test_search_by_an_old_hash_finds_the_template(api):
    t = create(api)
    new = api.put("/api/v0/template/", json={"hash_id": t["hash_id"], "name": "n"}).json()["template"]
    rows = search(api, {"hash_id": {"eq": t["hash_id"]}}).json()["templates"]
    assert [(r["id"], r["hash_id"]) for r in rows] == [(t["id"], new["hash_id"])]


def test_delete_by_id_or_hash_keeps_versions(api):
    a = create(api, name="a")
    b = create(api, name="b")
    r = api.request("DELETE", "/api/v0/template/", json={"template_id": a["id"]})
    assert r.status_code == 200 and r.json()["success"] is True
    r = api.request("DELETE", "/api/v0/template/", json={"hash_id": b["hash_id"]})
    assert r.status_code == 200
    assert search(api).json()["templates"] == []
    # the hash still resolves: instances and shared hashes keep working
    r = api.get(f"/api/v0/template/hash/{a['hash_id']}/")
    assert r.status_code == 200 and r.json()["template"]["name"] == "a"
    r = api.request("DELETE", "/api/v0/template/", json={"template_id": a["id"]})
    assert r.status_code == 404


def test_pitfall_numeric_id_where_a_hash_is_expected(api):
    t = create(api)
    r = api.put("/api/v0/template/", json={"hash_id": str(t["id"]), "name": "x"})
    assert r.status_code == 400
    assert "hash_id" in r.json()["msg"] and "numeric template id" in r.json()["msg"]
    r = api.request("DELETE", "/api/v0/template/", json={"hash_id": t["id"]})
    assert r.status_code == 400 and "numeric template id" in r.json()["msg"]
    r = search(api, {"hash_id": {"eq": str(t["id"])}})
    assert r.status_code == 400 and "numeric template id" in r.json()["msg"]


def test_pitfall_hash_where_a_numeric_id_is_expected(api):
    t = create(api)
    r = api.request("DELETE", "/api/v0/template/", json={"template_id": t["hash_id"]})
    assert r.status_code == 400 and "is a hash_id" in r.json()["msg"]
    r = api.get(f"/api/v0/template/{t['hash_id']}/versions/")
    assert r.status_code == 400 and "numeric template id" in r.json()["msg"]


def test_pitfall_env_as_dict_or_without_flag(api):
    r = api.post("/api/v0/template/", json={**VLLM, "env": {"VAR1": "value1"}})
    assert r.status_code == 400 and "-e VAR1=value1" in r.json()["msg"]
    r = api.post("/api/v0/template/", json={**VLLM, "env": "VAR1=value1 VAR2=value2"})
    assert r.status_code == 400 and "-e VAR1=value1" in r.json()["msg"]
    assert search(api).json()["templates"] == []  # nothing half-written


def test_unknown_template_is_404_naming_it(api):
    r = api.put("/api/v0/template/", json={"hash_id": "0" * 31 + "1", "name": "x"})
    assert r.status_code == 404 and "0" * 31 + "1" in r.json()["msg"]
    r = api.request("DELETE", "/api/v0/template/", json={"template_id": 987654})
    assert r.status_code == 404 and "987654" in r.json()["msg"]


def test_extra_filters_are_validated_and_stored_as_a_query_dict(api):
    t = create(api, extra_filters={"gpu_ram": {"gte": 23000.0}, "num_gpus": {"eq": "1"},
                                   "gpu_name": {"eq": "RTX 3090"}, "dph": {"lt": "0.5"}})
    assert t["extra_filters"] == {"gpu_ram": {"gte": 23000.0}, "num_gpus": {"eq": 1},
                                  "gpu_name": {"eq": "RTX 3090"}, "dph_total": {"lt": 0.5}}
    r = api.post("/api/v0/template/", json={**VLLM, "extra_filters": {"gpu_rams": {"gte": 1}}})
    assert r.status_code == 400 and "gpu_rams" in r.json()["msg"]


@pytest.mark.parametrize(
    "body, needle",
    [
        ({"image": None}, "image is required"),
        ({"recommended_disk_space": "lots"}, "recommended_disk_space"),
        ({"use_ssh": "perhaps"}, "use_ssh"),
        ({"runtype": "vm"}, "runtype"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_fields_are_400_with_a_fix(api, body, needle):
    r = api.post("/api/v0/template/", json={**VLLM, **body})
    assert r.status_code == 400 and needle in r.json()["msg"]


def test_bad_bodies_never_500(api):
    assert api.post("/api/v0/template/", content=b"{nope").status_code == 400
    assert api.post("/api/v0/template/", json=[1, 2]).status_code == 400
    r = api.request("DELETE", "/api/v0/template/", json={})
    assert r.status_code == 400 and "template_id" in r.json()["msg"]


def test_current_user_and_gpu_names(api, alice, live_server):
    me = api.get("/api/v0/users/current").json()
    assert me["id"] == alice.id and me["username"] == "alice" and "api_key" not in me
    assert me["host_agreement_accepted"] is False
    r = httpx.get(f"{live_server}/api/v0/gpu_names/unique/")
    assert r.status_code == 200 and r.json() == {"gpu_names": []}


def test_unknown_endpoint_is_json_404(api):
    r = api.get("/api/v0/nothing/")
    assert r.status_code == 404 and "no such endpoint" in r.json()["msg"]


def test_healthz(live_server):
    r = httpx.get(f"{live_server}/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


@pytest.mark.parametrize(
    "params, needle",
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "lots"}, "limit"),
        ({"limit": "100000"}, "limit"),
        ({"order_by": json.dumps([["nosuch", "asc"]])}, "nosuch"),
        ({"order_by": json.dumps([["id", "sideways"]])}, "sideways"),
    ],
)
def test_bad_limit_and_order_are_400(api, params, needle):
    r = api.get("/api/v0/template/", params={"select_filters": "{}", **params})
    assert r.status_code == 400 and needle in r.json()["msg"]


def test_dates_and_numeric_strings_compare_as_numbers(api, set_count_created):
    a = create(api, name="a")
    b = create(api, name="b")
    set_count_created(a["id"], 99)
    set_count_created(b["id"], 1000)  # as text "1000" < "100" < "99"; as numbers 99 < 100 < 1000
    rows = search(api, {"count_created": {"gt": "100"}}).json()["templates"]
    assert [r["name"] for r in rows] == ["b"]
    rows = search(api, {"created_at": {"gt": "01/01/2020"}}).json()["templates"]
    assert len(rows) == 2
    rows = search(api, {"created_at": {"lt": 1577836800}}).json()["templates"]
    assert rows == []
    rows = search(api, {"name": {"in": ["a", "zzz"]}, "private": {"eq": True}}).json()["templates"]
    assert [r["name"] for r in rows] == ["a"]
