"""The official ``vastai`` 1.9.1 CLI, unchanged, against a live gpuyard server (VAST-WIRE §1-3, 8, 10).

Every test runs the real CLI in a subprocess with ``--url`` and ``VAST_URL`` pointing at the test
server, ``--api-key``, and HOME / XDG dirs inside ``tmp_path`` so no real config, key or cache is
read or written. A CLI start costs about half a second to a second and a half, so each invocation
checks several things.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# ``python -m vastai`` does not work (the package has no __main__), so run the console script.
VASTAI = Path(sys.executable).with_name("vastai")
if not VASTAI.exists():  # pragma: no cover - only outside the project venv
    VASTAI = Path(shutil.which("vastai") or VASTAI)

DEFAULT_FILTERS = {"verified": {"eq": True}, "external": {"eq": False}, "rentable": {"eq": True}}

# Seeded into the template every update test starts from (a CLI-shaped create payload).
ORIGINAL = {
    "name": "orig",
    "image": "pytorch/pytorch",
    "tag": "2.1",
    "env": "-e A=1 -p 8080:8080",
    "onstart": "echo hi",
    "runtype": "ssh",
    "use_ssh": True,
    "ssh_direct": True,
    "docker_login_repo": "ghcr.io",
    "extra_filters": {"gpu_name": {"eq": "RTX 3090"}},
    "recommended_disk_space": "12",
    "readme": "R",
    "desc": "D",
}

# The example of `vastai update template --help`, quoted verbatim.
HELP_EXAMPLE_ENV = (
    "-p 3000:3000 -e MODEL_ARGS='--model-id TheBloke/Llama-2-7B-chat-GPTQ --quantize gptq'"
)
HELP_EXAMPLE_SEARCH = (
    "gpu_ram>=23 num_gpus=1 gpu_name=RTX_3090 inet_down>128 direct_port_count>3 disk_space>=192 "
    "driver_version>=535086005 rented=False"
)


@dataclass
class Cli:
    url: str
    home: Path
    env: dict[str, str]

    def __call__(self, *args: str, key: str | None) -> subprocess.CompletedProcess[str]:
        cmd = [str(VASTAI), "--url", self.url]
        if key is not None:
            cmd += ["--api-key", key]
        return subprocess.run(
            [*cmd, *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache" / "vastai"

    @property
    def config_dir(self) -> Path:
        return self.home / "config" / "vastai"


@pytest.fixture
def vastai(live_server: str, tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAST", "XDG_"))}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_DATA_HOME=str(home / "data"),
        VAST_URL=live_server,  # the gpu_names side request ignores --url
        VASTAI_NO_UPDATE_CHECK="1",
        VASTAI_MANIFEST_URL=f"{live_server}/cli/manifest.json",
        CI="1",
        NO_COLOR="1",
    )
    return Cli(url=live_server, home=home, env=env)


def create_http(api, **body) -> dict:
    r = api.post("/api/v0/template/", json=body)
    assert r.status_code == 200, r.text
    return r.json()["template"]


def after(prefix: str, out: str) -> str:
    assert out.startswith(prefix), out
    return out[len(prefix):]


def test_help_works_and_the_gpu_names_side_request_is_answered_locally(vastai):
    r = vastai("--help", key=None)
    assert r.returncode == 0, r.stderr
    assert "search templates" in r.stdout and "create template" in r.stdout
    # the CLI fetched /api/v0/gpu_names/unique/ from VAST_URL and cached the answer
    cache = json.loads((vastai.cache_dir / "gpu_names_cache.json").read_text())
    assert cache == {"gpu_names": []}


def test_create_template_with_every_documented_flag_then_find_it_by_name(vastai, alice, api, stored):
    r = vastai(
        "create", "template",
        "--name", "cli tpl",
        "--image", "pytorch/pytorch",
        "--image_tag", "latest",
        "--env", "-e A=1 -p 8080:8080",
        "--ssh", "--direct",
        "--onstart-cmd", "echo hi",
        "--search_params", "gpu_name=RTX_3090 gpu_ram>=20",
        "--disk_space", "12",
        "--readme", "R",
        "--desc", "D",
        "--login", "-u bob -p pw docker.io",
        key=alice.key,
    )
    assert r.returncode == 0, r.stderr
    printed = ast.literal_eval(after("New Template: ", r.stdout.strip()))
    assert isinstance(printed["id"], int) and len(printed["hash_id"]) == 32

    t = stored(api, printed["id"])
    assert t == printed
    assert t["creator_id"] == alice.id
    assert (t["name"], t["image"], t["tag"]) == ("cli tpl", "pytorch/pytorch", "latest")
    assert t["env"] == "-e A=1 -p 8080:8080"  # the docker-options string, verbatim
    assert t["onstart"] == "echo hi"
    assert t["runtype"] == "ssh" and t["use_ssh"] is True and t["ssh_direct"] is True
    assert t["jup_direct"] is False and t["use_jupyter_lab"] is False
    assert t["docker_login_repo"] == "-u"  # the client sends only the first --login token
    assert t["extra_filters"] == {
        **DEFAULT_FILTERS,
        "gpu_name": {"eq": "RTX 3090"},
        "gpu_ram": {"gte": 20000.0},
    }
    assert t["recommended_disk_space"] == 12.0  # sent as the string "12"
    assert (t["readme"], t["desc"], t["readme_visible"], t["private"]) == ("R", "D", True, True)
    # role detection (GET /api/v0/users/current) was answered too
    assert (vastai.config_dir / "vast_role").read_text() == "client"

    # `_` in a query value means a space: name=cli_tpl finds "cli tpl"
    r = vastai("search", "templates", "name=cli_tpl", key=alice.key)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [t]


def test_search_templates_filters_on_counters_flags_and_dates(vastai, alice, bob, api,
                                                               set_count_created):
    wanted = create_http(api, name="popular ssh", image="img", runtype="ssh", use_ssh=True)
    quiet = create_http(api, name="quiet ssh", image="img", runtype="ssh", use_ssh=True)
    no_ssh = create_http(api, name="popular args", image="img")
    with bob.http() as b:
        theirs = create_http(b, name="bob public", image="img", use_ssh=True, private=False)
    for t, count in ((wanted, 150), (quiet, 5), (no_ssh, 300), (theirs, 7)):
        set_count_created(t["id"], count)

    r = vastai(
        "search", "templates", "count_created > 100 use_ssh == True created_at > 01/01/2020",
        key=alice.key,
    )
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(t["id"], t["name"], t["count_created"]) for t in rows] == [
        (wanted["id"], "popular ssh", 150)
    ]

    # no count filter: alice's ssh templates plus bob's public one, never a private one of bob's
    r = vastai("search", "templates", "count_created >= 0 use_ssh == True", key=alice.key)
    assert r.returncode == 0, r.stderr
    assert [t["id"] for t in json.loads(r.stdout)] == [wanted["id"], quiet["id"], theirs["id"]]


def test_update_template_by_hash_makes_a_new_version_and_keeps_what_the_wire_leaves_null(
    vastai, alice, api
, stored):
    t0 = create_http(api, **ORIGINAL)
    r = vastai("update", "template", t0["hash_id"], "--name", "upd", "--image", "img2",
               key=alice.key)
    assert r.returncode == 0, r.stderr
    t1 = json.loads(after("updated template: ", r.stdout.strip()))
    assert t1["id"] == t0["id"] and t1["hash_id"] != t0["hash_id"]
    assert (t1["name"], t1["image"]) == ("upd", "img2")
    # sent as null by the client, so kept
    for key in ("tag", "env", "onstart", "readme", "desc", "docker_login_repo",
                "recommended_disk_space"):
        assert t1[key] == t0[key], key
    # sent as false/"args"/the three defaults by the client (no --ssh, no --search_params)
    assert (t1["runtype"], t1["use_ssh"], t1["ssh_direct"]) == ("args", False, False)
    assert t1["extra_filters"] == DEFAULT_FILTERS
    assert stored(api, t0["id"]) == t1

    # the official help example, addressed by the *old* hash: name and image are not given
    r = vastai(
        "update", "template", t0["hash_id"],
        "--env", HELP_EXAMPLE_ENV,
        "--onstart-cmd", "bash launch.sh",
        "--search_params", HELP_EXAMPLE_SEARCH,
        "--disk_space", "8.0",
        "--ssh", "--direct",
        key=alice.key,
    )
    assert r.returncode == 0, r.stderr
    t2 = json.loads(after("updated template: ", r.stdout.strip()))
    assert t2["id"] == t0["id"] and t2["hash_id"] not in (t0["hash_id"], t1["hash_id"])
    assert (t2["name"], t2["image"], t2["tag"]) == ("upd", "img2", "2.1")  # kept
    assert t2["env"] == HELP_EXAMPLE_ENV and t2["onstart"] == "bash launch.sh"
    assert (t2["runtype"], t2["use_ssh"], t2["ssh_direct"]) == ("ssh", True, True)
    assert t2["recommended_disk_space"] == 8.0
    assert t2["extra_filters"] == {
        **DEFAULT_FILTERS,
        "gpu_ram": {"gte": 23000.0},
        "num_gpus": {"eq": 1},
        "gpu_name": {"eq": "RTX 3090"},
        "inet_down": {"gt": 128.0},
        "direct_port_count": {"gt": 3},
        "disk_space": {"gte": 192.0},
        "driver_version": {"gte": 535086005},
        "rented": {"eq": False},
    }
    assert stored(api, t0["id"]) == t2
    versions = api.get(f"/api/v0/template/{t0['id']}/versions/").json()["versions"]
    assert [v["hash_id"] for v in versions] == [t2["hash_id"], t1["hash_id"], t0["hash_id"]]


def test_update_template_refusals_print_the_server_msg_and_exit_1(vastai, alice, bob, api, stored):
    t = create_http(api, **ORIGINAL, private=False)

    # a numeric template id where the hash is expected: the server's 400 explains it
    r = vastai("update", "template", str(t["id"]), "--name", "x", key=alice.key)
    assert r.returncode == 1
    assert "numeric template id" in r.stdout and "hash_id" in r.stdout
    assert "None" not in r.stdout

    # another user's public template: found, but only its creator may change it
    r = vastai("update", "template", t["hash_id"], "--name", "mine now", key=bob.key)
    assert r.returncode == 1
    assert "only its creator" in r.stdout

    assert stored(api, t["id"]) == t  # nothing changed


def test_delete_template_by_id_and_by_hash(vastai, alice, api):
    a = create_http(api, name="a", image="img")
    b = create_http(api, name="b", image="img")

    r = vastai("delete", "template", "--template-id", str(a["id"]), key=alice.key)
    assert r.returncode == 0, r.stderr
    assert f"Template {a['id']} deleted" in r.stdout

    r = vastai("delete", "template", "--hash-id", b["hash_id"], key=alice.key)
    assert r.returncode == 0, r.stderr
    assert f"Template {b['id']} deleted" in r.stdout

    r = vastai("search", "templates", key=alice.key)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []
    # the hash itself keeps resolving (shared hashes and instances keep working)
    assert api.get(f"/api/v0/template/hash/{a['hash_id']}/").json()["template"]["name"] == "a"


def test_show_user_table_and_raw(vastai, alice):
    r = vastai("show", "user", key=alice.key)
    assert r.returncode == 0, r.stderr
    assert "Username" in r.stdout and "alice" in r.stdout
    assert alice.key not in r.stdout

    r = vastai("--raw", "show", "user", key=alice.key)
    assert r.returncode == 0, r.stderr
    me = json.loads(r.stdout)
    assert me["id"] == alice.id and me["username"] == "alice"
    assert "api_key" not in me and alice.key not in r.stdout


def test_a_bad_key_prints_the_servers_msg(vastai):
    r = vastai("show", "user", key="0" * 64)
    assert r.stdout == ""
    line = r.stderr.splitlines()[0]
    assert line.startswith("Failed with error 401: ")
    assert "invalid API key" in line and "None" not in line
