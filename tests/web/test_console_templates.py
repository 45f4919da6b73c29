"""The console's template pages, seen as a user sees them (HTML through a signed-in client)."""

from __future__ import annotations

import html
import json
import re

import httpx
import pytest

XSS = "<script>alert(1)</script>"

FULL_FORM = {
    "name": "vLLM server",
    "image": "vllm/vllm-openai",
    "tag": "v0.6.0",
    "desc": "Serves a model over HTTP",
    "readme": "# vLLM\nOpen port 8000.",
    "readme_visible": "true",
    "env": "-e MODEL_ID=my/model -e MAX=4096 -p 8000:8000 -p 8081:8081/udp -h box",
    "onstart": 'echo "start"; vllm serve $MODEL_ID',
    "runtype": "ssh",
    "args_str": "--port 8000",
    "use_ssh": "true",
    "ssh_direct": "true",
    "jupyter_dir": "/workspace",
    "use_jupyter_lab": "true",
    "docker_login_repo": "ghcr.io",
    "extra_filters": "gpu_ram>=24 num_gpus=1",
    "recommended_disk_space": "50",
    "href": "https://example.org/vllm",
    "repo": "https://github.com/vllm-project/vllm",
    # "jup_direct" and "private" left unticked: a public template without direct Jupyter
}


def api_create(account, **body) -> dict:
    with account.http() as client:
        r = client.post("/api/v0/template/", json={"image": "img/x", **body})
        assert r.status_code == 200, r.text
        return r.json()["template"]


def api_search(account, filters: dict) -> list[dict]:
    with account.http() as client:
        r = client.get("/api/v0/template/", params={"select_filters": json.dumps(filters)})
        assert r.status_code == 200, r.text
        return r.json()["templates"]


def template_ids(page: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr data-template-id="(\d+)"', page)]


def element(page: str, element_id: str) -> str:
    """The opening tag (and text up to the next tag) of the element with this id."""
    match = re.search(rf'<[^>]*\bid="{re.escape(element_id)}"[^>]*>[^<]*', page)
    assert match, f"no element #{element_id}"
    return match.group(0)


def new_template(console, **fields) -> httpx.Response:
    console.get("/templates/new")
    return console.post("/templates/new", {"image": "img/x", "private": "true", **fields})


def template_id_from(r: httpx.Response) -> int:
    match = re.fullmatch(r"/templates/(\d+)", r.url.path)
    assert match, r.url
    return int(match.group(1))


# ---------------------------------------------------------------------------------------------
# List, search, sort, filters
# ---------------------------------------------------------------------------------------------


def test_the_list_shows_mine_and_public_with_filters(console, alice, bob):
    mine = api_create(alice, name="alice private")
    mine_public = api_create(alice, name="alice public", private=False)
    theirs_public = api_create(bob, name="bob public", private=False)
    api_create(bob, name="bob secret")
    r = console.get("/templates")
    assert r.status_code == 200 and "<title>Templates · gpuyard</title>" in r.text
    assert sorted(template_ids(r.text)) == sorted([mine["id"], mine_public["id"], theirs_public["id"]])
    assert "bob secret" not in r.text
    assert 'id="new-template" href="/templates/new"' in r.text
    assert f'href="/templates/{mine["id"]}"' in r.text
    assert f'href="/launch?template={mine["hash_id"]}"' in r.text
    r = console.get("/templates", params={"scope": "mine"})
    assert sorted(template_ids(r.text)) == sorted([mine["id"], mine_public["id"]])
    assert 'id="scope-mine"' in r.text and 'aria-current="page">Mine only' in r.text
    r = console.get("/templates", params={"scope": "public"})
    assert sorted(template_ids(r.text)) == sorted([mine_public["id"], theirs_public["id"]])
    # a query and a scope both apply
    r = console.get("/templates", params={"scope": "mine", "q": f"creator_id=={theirs_public['creator_id']}"})
    assert template_ids(r.text) == []


def test_search_with_the_query_language(console, alice, set_count_created):
    busy = api_create(alice, name="busy", runtype="ssh", use_ssh=True)
    api_create(alice, name="idle", runtype="ssh", use_ssh=True)
    quiet = api_create(alice, name="quiet")
    set_count_created(busy["id"], 150)
    set_count_created(quiet["id"], 500)
    r = console.get("/templates", params={"q": "count_created > 100 use_ssh == True"})
    assert r.status_code == 200
    assert template_ids(r.text) == [busy["id"]]
    assert 'value="count_created &gt; 100 use_ssh == True"' in r.text  # the box keeps the query
    assert "1 template" in r.text


def test_a_bad_query_shows_the_parsers_message_next_to_the_box(console, alice):
    from gpuyard.errors import QueryError
    from gpuyard.query import TEMPLATE_FIELDS, parse_query

    api_create(alice, name="one")
    with pytest.raises(QueryError) as parsed:
        parse_query("count_created > lots", TEMPLATE_FIELDS)
    r = console.get("/templates", params={"q": "count_created > lots"})
    assert r.status_code == 400 and "Sign out" in r.text
    box = element(r.text, "q")
    assert 'aria-invalid="true"' in box and "q-error" in box
    assert html.unescape(element(r.text, "q-error")).endswith(parsed.value.msg)
    # an unknown field names the field, also from the parser
    r = console.get("/templates", params={"q": "colour=red"})
    assert "unknown field 'colour'" in html.unescape(element(r.text, "q-error"))
    # a numeric id where a hash belongs: the service's message, next to the box too
    r = console.get("/templates", params={"q": "hash_id=5"})
    assert r.status_code == 400 and "numeric template id" in element(r.text, "q-error")


def test_sorting_by_column_both_ways(console, alice, set_count_created):
    a = api_create(alice, name="apple")
    b = api_create(alice, name="banana")
    c = api_create(alice, name="cherry")
    set_count_created(a["id"], 5)
    set_count_created(b["id"], 50)
    set_count_created(c["id"], 1)
    r = console.get("/templates", params={"sort": "name", "dir": "asc"})
    assert template_ids(r.text) == [a["id"], b["id"], c["id"]]
    assert 'aria-sort="ascending"' in r.text
    # the active column's link flips the direction, the others start ascending
    assert 'href="/templates?q=&amp;scope=all&amp;sort=name&amp;dir=desc"' in r.text
    r = console.get("/templates", params={"sort": "name", "dir": "desc"})
    assert template_ids(r.text) == [c["id"], b["id"], a["id"]]
    r = console.get("/templates", params={"sort": "count_created", "dir": "desc"})
    assert template_ids(r.text) == [b["id"], a["id"], c["id"]]
    r = console.get("/templates")  # newest first by default
    assert template_ids(r.text) == [c["id"], b["id"], a["id"]]


# ---------------------------------------------------------------------------------------------
# Create, env editor, errors next to fields
# ---------------------------------------------------------------------------------------------


def test_create_with_every_field(console, alice):
    r = console.get("/templates/new")
    assert r.status_code == 200 and "<title>New template · gpuyard</title>" in r.text
    for field in ("name", "image", "tag", "desc", "readme", "readme_visible", "env", "onstart", "runtype",
                  "args_str", "use_ssh", "ssh_direct", "jup_direct", "jupyter_dir", "use_jupyter_lab",
                  "docker_login_repo", "extra_filters", "recommended_disk_space", "href", "repo", "private"):
        assert f'id="{field}" name="{field}"' in r.text, field
        assert f'<label for="{field}">' in r.text, field
    r = console.post("/templates/new", FULL_FORM)
    assert r.status_code == 200
    tid = template_id_from(r)
    [stored] = api_search(alice, {"id": {"eq": tid}})
    assert stored["hash_id"] in element(r.text, "hash-id")
    assert f"Template {tid} created, hash_id {stored['hash_id']}" in r.text
    expected = {
        "name": "vLLM server", "image": "vllm/vllm-openai", "tag": "v0.6.0",
        "desc": "Serves a model over HTTP", "readme": "# vLLM\nOpen port 8000.", "readme_visible": True,
        "env": FULL_FORM["env"], "onstart": FULL_FORM["onstart"], "runtype": "ssh", "args_str": "--port 8000",
        "use_ssh": True, "ssh_direct": True, "jup_direct": False, "jupyter_dir": "/workspace",
        "use_jupyter_lab": True, "docker_login_repo": "ghcr.io",
        "extra_filters": {"gpu_ram": {"gte": 24000.0}, "num_gpus": {"eq": 1}},
        "recommended_disk_space": 50.0, "href": "https://example.org/vllm",
        "repo": "https://github.com/vllm-project/vllm", "private": False,
    }
    assert {k: stored[k] for k in expected} == expected
    # the page shows the fields and the readme
    assert "Public" in r.text and "vllm/vllm-openai" in r.text and "Open port 8000." in r.text
    assert "gpu_ram&gt;=24" in r.text or "gpu_ram>=24" in r.text
    # the same content through the API has the same hash (the console adds nothing of its own)
    with alice.http() as client:
        body = {**expected, "extra_filters": "gpu_ram>=24 num_gpus=1"}
        again = client.post("/api/v0/template/", json=body).json()
    assert again["template"]["hash_id"] == stored["hash_id"] and "already have" in again["msg"]


def test_the_edit_form_round_trips_without_changing_the_hash(console, alice):
    r = console.post("/templates/new", FULL_FORM)
    tid = template_id_from(r)
    [before] = api_search(alice, {"id": {"eq": tid}})
    form = console.get(f"/templates/{tid}/edit").text
    shown = re.search(r'<textarea id="extra_filters"[^>]*>([^<]*)</textarea>', form).group(1)
    assert html.unescape(shown) == "gpu_ram>=24 num_gpus=1"  # the query language, as it was typed
    data = {k: v for k, v in FULL_FORM.items()}
    data["hash_id"] = before["hash_id"]
    data["recommended_disk_space"] = "50"
    r = console.post(f"/templates/{tid}/edit", data)
    assert "Nothing changed" in r.text and before["hash_id"] in element(r.text, "hash-id")


@pytest.mark.parametrize("env", ["VAR1=value1", "-e A", "-p 70000:22", "-e A='open", "--env A=1"])
def test_a_bad_env_shows_the_apis_message_next_to_the_field_and_stores_nothing(console, alice, env):
    with alice.http() as client:
        api = client.post("/api/v0/template/", json={"image": "img/x", "env": env})
    assert api.status_code == 400
    r = new_template(console, name="bad env", env=env)
    assert r.status_code == 400 and r.url.path == "/templates/new"
    assert html.unescape(element(r.text, "env-error")).endswith(api.json()["msg"])
    box = re.search(r'<textarea id="env"[^>]*>([^<]*)</textarea>', r.text)
    assert box and 'aria-invalid="true"' in box.group(0) and html.unescape(box.group(1)) == env
    assert 'value="bad env"' in r.text  # the rest of what was typed is kept
    assert 'id="page-error"' not in r.text
    assert api_search(alice, {}) == []


@pytest.mark.parametrize(
    ("fields", "where", "needle"),
    [
        ({"image": ""}, "image", "image is required"),
        ({"image": "my image"}, "image", "contains spaces"),
        ({"extra_filters": "gpu_nam=RTX_3090"}, "extra_filters", "unknown field"),
        ({"extra_filters": "{not json"}, "extra_filters", "not a valid JSON object"),
        ({"recommended_disk_space": "lots"}, "recommended_disk_space", "number of GB"),
    ],
)
def test_errors_go_next_to_the_field_they_name(console, alice, fields, where, needle):
    r = new_template(console, name="keep me", **fields)
    assert r.status_code == 400
    assert needle in html.unescape(element(r.text, f"{where}-error"))
    assert 'aria-invalid="true"' in element(r.text, where)
    assert 'value="keep me"' in r.text
    assert api_search(alice, {}) == []


def test_env_preview_answers_json(console):
    console.get("/templates/new")
    headers = {"X-CSRF-Token": console.csrf, "Accept": "application/json"}
    r = console.client.post("/templates/env-preview", headers=headers,
                            data={"env": "-e A=1 -e B='x y' -p 8000:8000 -p 53/udp -h box"})
    assert r.status_code == 200
    assert r.json() == {
        "ok": True,
        "variables": [["A", "1"], ["B", "x y"]],
        "ports": [{"spec": "8000:8000", "container": 8000, "host": 8000, "proto": "tcp",
                   "published": "assigned at launch (8000 if the machine's direct ports include it "
                                "and it is free)"},  # no machines yet
                  {"spec": "53/udp", "container": 53, "host": None, "proto": "udp",
                   "published": "assigned at launch"}],
        "options": [["-h", "box"]],
    }
    r = console.client.post("/templates/env-preview", headers=headers, data={"env": "VAR1=value1"})
    from gpuyard.envspec import parse_env
    from gpuyard.errors import InvalidInput

    with pytest.raises(InvalidInput) as err:
        parse_env("VAR1=value1")
    assert r.json() == {"ok": False, "msg": err.value.msg}
    assert r.json()["msg"].startswith("env: 'VAR1=value1' is missing its -e flag")
    # no CSRF header → 403
    r = console.client.post("/templates/env-preview", headers={"Accept": "application/json"},
                            data={"env": "-e A=1"})
    assert r.status_code == 403


def test_the_form_shows_the_env_preview_table(console):
    r = new_template(console, env="-e MODEL=x -p 8000:8000", image="")  # an error elsewhere
    table = r.text.split('id="env-preview"')[1].split("</table>")[0]
    assert 'data-kind="variable"' in table and "MODEL" in table and "8000:8000" in table
    assert "hidden" not in table.split(">")[0]
    assert '<script src="/static/templates.js" defer></script>' in r.text
    assert "/templates/env-preview" in console.get("/static/templates.js").text


# ---------------------------------------------------------------------------------------------
# Detail, edit, history, diff
# ---------------------------------------------------------------------------------------------


def test_the_template_page_shows_hash_share_link_and_buttons(console, alice, live_server):
    t = api_create(alice, name="shared", env="-e A=1")
    r = console.get(f"/templates/{t['id']}")
    assert r.status_code == 200 and "<title>shared · gpuyard</title>" in r.text
    assert t["hash_id"] in element(r.text, "hash-id")
    assert f'data-copy="{t["hash_id"]}"' in element(r.text, "copy-hash")
    share = f"{live_server}/templates/hash/{t['hash_id']}"
    assert f'data-copy="{share}"' in element(r.text, "copy-share")
    assert f'value="{share}"' in element(r.text, "share-link")
    assert f'href="/launch?template={t["hash_id"]}"' in element(r.text, "launch-link")
    assert f'href="/templates/{t["id"]}/edit"' in element(r.text, "edit-link")
    assert "data-confirm=" in element(r.text, "delete-form")
    assert "Make public" in element(r.text, "toggle-visibility")


def test_edit_shows_the_new_hash_and_the_history_has_both(console, alice):
    t = api_create(alice, name="first", env="-e A=1")
    r = console.get(f"/templates/{t['id']}/edit")
    assert r.status_code == 200 and "<title>Edit first · gpuyard</title>" in r.text
    assert 'value="first"' in r.text and ">-e A=1</textarea>" in r.text
    r = console.post(f"/templates/{t['id']}/edit",
                     {"hash_id": t["hash_id"], "image": "img/x", "name": "second", "env": "-e A=2",
                      "readme_visible": "true", "private": "true", "runtype": "args"})
    assert r.url.path == f"/templates/{t['id']}"
    [now] = api_search(alice, {"id": {"eq": t["id"]}})
    assert now["hash_id"] != t["hash_id"] and now["name"] == "second"
    assert now["hash_id"] in element(r.text, "hash-id")
    assert f"its new hash_id is {now['hash_id']}" in r.text
    versions = r.text.split('id="versions"')[1].split("</table>")[0]
    assert versions.index(now["hash_id"]) < versions.index(t["hash_id"])  # newest first
    assert f'id="a-{t["hash_id"]}"' in versions and f'id="b-{now["hash_id"]}"' in versions
    assert 'id="compare"' in r.text and 'action="/templates/' in element(r.text, "versions-form")


def test_diff_highlights_the_changed_fields(console, alice):
    t = api_create(alice, name="before", env="-e A=1", onstart="echo hi")
    with alice.http() as client:
        edited = client.put("/api/v0/template/", json={"hash_id": t["hash_id"], "env": "-e A=2"}).json()
    new_hash = edited["template"]["hash_id"]
    r = console.get(f"/templates/{t['id']}/diff", params={"a": t["hash_id"], "b": new_hash})
    assert r.status_code == 200 and "Compare versions of before" in r.text
    assert 'id="diff"' in r.text and "1 field changed" in r.text
    env_row = re.search(r'<tr data-field="env"[^>]*>.*?</tr>', r.text, re.S).group(0)
    assert 'class="changed"' in env_row and "-e A=1" in env_row and "-e A=2" in env_row
    name_row = re.search(r'<tr data-field="name"[^>]*>.*?</tr>', r.text, re.S).group(0)
    assert 'class="changed"' not in name_row
    assert len(re.findall(r"<tr data-field=", r.text)) == 21
    r = console.get(f"/templates/{t['id']}/diff", params={"a": new_hash, "b": new_hash})
    assert 'id="no-differences"' in r.text and "No differences" in r.text
    r = console.get(f"/templates/{t['id']}/diff", params={"a": "0" * 32, "b": new_hash})
    assert r.status_code == 404 and "is not a hash of one of the versions" in element(r.text, "compare-error")


def test_make_public_then_private(console, alice, bob):
    t = api_create(alice, name="flip")
    r = console.get(f"/templates/{t['id']}")
    r = console.post(f"/templates/{t['id']}/visibility", {"private": "false"})
    assert r.url.path == f"/templates/{t['id']}" and "is now public" in r.text
    assert "Make private" in element(r.text, "toggle-visibility")
    assert [row["id"] for row in api_search(bob, {})] == [t["id"]]
    public_hash = api_search(alice, {"id": {"eq": t["id"]}})[0]["hash_id"]
    assert public_hash != t["hash_id"] and public_hash in element(r.text, "hash-id")
    r = console.post(f"/templates/{t['id']}/visibility", {"private": "true"})
    assert "is now private" in r.text and "Make public" in element(r.text, "toggle-visibility")
    assert api_search(bob, {}) == []


def test_delete(console, alice):
    t = api_create(alice, name="doomed")
    console.get(f"/templates/{t['id']}")
    r = console.post(f"/templates/{t['id']}/delete")
    assert r.url.path == "/templates" and f"Template {t['id']} deleted" in r.text
    assert t["id"] not in template_ids(r.text)
    assert console.get(f"/templates/{t['id']}").status_code == 404
    # the hash still names its content
    r = console.get(f"/templates/hash/{t['hash_id']}")
    assert r.status_code == 200 and "doomed" in r.text


def test_the_share_link_shows_the_version_read_only(console, alice, bob, make_account):
    t = api_create(bob, name="bob private", env="-e SECRET_FREE=1")
    r = console.get(f"/templates/hash/{t['hash_id']}")
    assert r.status_code == 200 and f"<title>Template version {t['hash_id']} · gpuyard</title>" in r.text
    assert "bob private" in r.text and "SECRET_FREE" in r.text
    assert 'id="edit-link"' not in r.text and 'id="delete-form"' not in r.text
    assert f'href="/launch?template={t["hash_id"]}"' in r.text
    # a hash in the id's place goes to the hash page
    assert console.get(f"/templates/{t['hash_id']}").url.path == f"/templates/hash/{t['hash_id']}"
    assert console.get(f"/templates/hash/{'a' * 32}").status_code == 404


# ---------------------------------------------------------------------------------------------
# Visibility, ownership, escaping, CSRF
# ---------------------------------------------------------------------------------------------


def test_another_users_private_template_is_404(console, bob):
    t = api_create(bob, name="bob secret")
    for path in (f"/templates/{t['id']}", f"/templates/{t['id']}/edit", f"/templates/{t['id']}/diff"):
        r = console.get(path)
        assert r.status_code == 404 and "not found" in r.text and "bob secret" not in r.text, path
        assert "<title>Template not found · gpuyard</title>" in r.text
    console.get("/templates")
    assert console.post(f"/templates/{t['id']}/delete").status_code == 404
    assert console.post(f"/templates/{t['id']}/visibility", {"private": "false"}).status_code == 404
    assert console.get("/templates/999999").status_code == 404


def test_another_users_public_template_is_view_only(console, alice, bob):
    t = api_create(bob, name="bob public", private=False)
    r = console.get(f"/templates/{t['id']}")
    assert r.status_code == 200 and "bob public" in r.text and 'id="view-only"' in r.text
    for absent in ('id="edit-link"', 'id="delete-form"', 'id="visibility-form"'):
        assert absent not in r.text
    assert 'id="launch-link"' in r.text and 'id="versions"' in r.text
    r = console.get(f"/templates/{t['id']}/edit")
    assert r.status_code == 403 and "only its creator can change it" in r.text
    for path, data in ((f"/templates/{t['id']}/edit", {"image": "img/y"}),
                       (f"/templates/{t['id']}/delete", {}),
                       (f"/templates/{t['id']}/visibility", {"private": "true"})):
        r = console.post(path, data)
        assert r.status_code == 403 and "only its creator can change it" in r.text, path
    [still] = api_search(bob, {"id": {"eq": t["id"]}})
    assert still["hash_id"] == t["hash_id"]


def test_script_in_name_desc_and_readme_renders_as_text(console, alice):
    r = new_template(console, name=XSS, desc=XSS, readme=XSS, env=f"-e X='{XSS}'", private="")
    tid = template_id_from(r)
    escaped = html.escape(XSS)
    for page in (r.text, console.get("/templates").text, console.get(f"/templates/{tid}/edit").text,
                 console.get(f"/templates/hash/{api_search(alice, {})[0]['hash_id']}").text):
        assert XSS not in page
        assert escaped in page or "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert f"<title>{escaped} · gpuyard</title>" in r.text
    # the same through an edit, a diff and the env preview
    console.post(f"/templates/{tid}/edit", {"image": "img/x", "name": "plain", "desc": XSS, "readme": XSS})
    versions = [v["hash_id"] for v in alice_versions(alice, tid)]
    r = console.get(f"/templates/{tid}/diff", params={"a": versions[1], "b": versions[0]})
    assert XSS not in r.text and escaped in r.text
    # a bad env with markup in it: the message comes back escaped next to the field
    r = new_template(console, env=f"{XSS}=1")
    assert r.status_code == 400 and XSS not in r.text and "&lt;script&gt;" in element(r.text, "env-error")


def alice_versions(account, template_id: int) -> list[dict]:
    with account.http() as client:
        return client.get(f"/api/v0/template/{template_id}/versions/").json()["versions"]


def test_posts_without_the_csrf_token_are_refused(console, alice):
    t = api_create(alice, name="guarded")
    for path, data in (("/templates/new", {"image": "img/y"}),
                       (f"/templates/{t['id']}/edit", {"image": "img/y"}),
                       (f"/templates/{t['id']}/visibility", {"private": "false"}),
                       (f"/templates/{t['id']}/delete", {})):
        r = console.client.post(path, data=data)
        assert r.status_code == 403 and "did not come from this console" in r.text, path
        r = console.client.post(path, data={**data, "csrf_token": "wrong"})
        assert r.status_code == 403, path
    [still] = api_search(alice, {})
    assert still["hash_id"] == t["hash_id"]


def test_pages_need_a_sign_in(anonymous):
    for path in ("/templates", "/templates/new", "/templates/1", "/templates/1/edit"):
        assert anonymous.get(path).url.path == "/login", path
