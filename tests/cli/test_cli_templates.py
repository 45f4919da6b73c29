"""Our CLI, run in-process through ``main()``: tables by default, JSON with --raw, exit 1 on
errors with the server's message on stderr."""

from __future__ import annotations

import json

import pytest

from gpuyard.cli.main import main


@pytest.fixture
def run(alice, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("GPUYARD_API_KEY", raising=False)
    monkeypatch.delenv("GPUYARD_URL", raising=False)

    def go(*argv: str, key: str | None = alice.key) -> tuple[int, str, str]:
        base = ["--url", alice.url] + (["--api-key", key] if key else [])
        code = main([*argv[:2], *base, *argv[2:]] if len(argv) >= 2 else [*base, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return go


def created(run, *flags: str) -> dict:
    code, out, err = run("create", "template", "--raw", *flags)
    assert code == 0, err
    return json.loads(out)["template"]


def test_create_template_with_the_official_flags(run):
    t = created(
        run, "--name", "mytpl", "--image", "pytorch/pytorch", "--image_tag", "2.3",
        "--env", "-e A=1 -p 8080:8080", "--ssh", "--direct", "--onstart-cmd", "echo hi",
        "--search_params", "gpu_name=RTX_3090 gpu_ram>=20", "--disk_space", "12",
        "--readme", "hello", "--desc", "d", "--login", "-u bob -p pw docker.io", "--public",
    )
    assert (t["name"], t["image"], t["tag"]) == ("mytpl", "pytorch/pytorch", "2.3")
    assert t["runtype"] == "ssh" and t["use_ssh"] and t["ssh_direct"] and not t["jup_direct"]
    assert t["docker_login_repo"] == "-u" and t["recommended_disk_space"] == 12.0
    assert t["private"] is False and t["readme"] == "hello" and t["desc"] == "d"
    assert t["extra_filters"] == {
        "verified": {"eq": True}, "external": {"eq": False}, "rentable": {"eq": True},
        "gpu_name": {"eq": "RTX 3090"}, "gpu_ram": {"gte": 20000.0},
    }


def test_cli_attaches_default_filters_unless_n(run):
    assert created(run, "--image", "a")["extra_filters"] == {
        "verified": {"eq": True}, "external": {"eq": False}, "rentable": {"eq": True},
    }
    assert created(run, "--image", "b", "-n")["extra_filters"] == {}


def test_jupyter_flags(run):
    t = created(run, "--image", "j", "--jupyter", "--direct", "--jupyter-lab",
                "--jupyter-dir", "/work")
    assert t["runtype"] == "jupyter" and t["jup_direct"] and t["use_ssh"]
    assert t["use_jupyter_lab"] and t["jupyter_dir"] == "/work"


def test_table_output_and_search(run):
    created(run, "--name", "alpha", "--image", "img", "--ssh")
    created(run, "--name", "beta", "--image", "img2")
    code, out, _ = run("search", "templates", "use_ssh == True")
    assert code == 0 and "alpha" in out and "beta" not in out and "img:latest" in out
    code, out, _ = run("search", "templates", "--raw", "-o", "name-", "--limit", "1")
    assert [t["name"] for t in json.loads(out)] == ["beta"]
    code, out, _ = run("search", "templates", "name", "==", "nothing")
    assert code == 0 and "No templates match" in out


def test_update_changes_only_given_options(run):
    t = created(run, "--name", "a", "--image", "img", "--ssh", "--direct", "--env", "-e X=1")
    code, out, err = run("update", "template", "--raw", t["hash_id"], "--name", "b")
    assert code == 0, err
    new = json.loads(out)["template"]
    assert new["id"] == t["id"] and new["hash_id"] != t["hash_id"]
    assert new["name"] == "b" and new["env"] == "-e X=1" and new["ssh_direct"] is True
    assert new["extra_filters"] == t["extra_filters"]
    code, out, _ = run("show", "template-versions", str(t["id"]))
    assert code == 0 and new["hash_id"] in out and t["hash_id"] in out


def test_delete_and_its_errors(run):
    t = created(run, "--image", "img")
    code, out, _ = run("delete", "template", "--template-id", str(t["id"]))
    assert code == 0 and f"Template {t['id']} deleted" in out
    code, _, err = run("delete", "template", "--template-id", str(t["id"]))
    assert code == 1 and f"template {t['id']} not found" in err
    code, _, err = run("delete", "template")
    assert code == 1 and "--template-id" in err


def test_errors_exit_non_zero_with_the_server_msg(run):
    code, _, err = run("update", "template", "123", "--name", "x")
    assert code == 1 and "numeric template id" in err
    code, _, err = run("search", "templates", "count_created >> 3")
    assert code == 1 and "count_created >> 3" in err
    code, _, err = run("search", "templates", "bogus_field = 3")
    assert code == 1 and "bogus_field" in err
    code, _, err = run("create", "template", "--image", "i", "--env", "A=1")
    assert code == 1 and "-e A=1" in err
    code, _, err = run("show", "user", key="not-a-key")
    assert code == 1 and "invalid API key" in err


def test_show_user_and_set_api_key(run, alice, capsys, tmp_path):
    code, out, _ = run("show", "user", "--raw")
    assert code == 0 and json.loads(out)["username"] == "alice"
    assert main(["set", "api-key", alice.key]) == 0
    assert main(["set", "url", alice.url]) == 0
    capsys.readouterr()
    assert main(["show", "user", "--raw"]) == 0  # key and URL now come from the config file
    assert json.loads(capsys.readouterr().out)["id"] == alice.id


def test_admin_recommend_template(run, db_url, capsys):
    public = created(run, "--name", "pub", "--image", "img", "--ssh", "--public")
    private = created(run, "--name", "priv", "--image", "img2", "--ssh")
    assert main(["admin", "recommend-template", str(public["id"]), "--db", db_url]) == 0
    assert "now on the recommended list" in capsys.readouterr().out
    code, out, _ = run("search", "templates", "--raw", "recommended == True use_ssh == True")
    rows = json.loads(out)
    assert [(r["id"], r["hash_id"]) for r in rows] == [(public["id"], public["hash_id"])]
    assert main(["admin", "recommend-template", str(private["id"]), "--db", db_url]) == 1
    assert "only public templates" in capsys.readouterr().err
    assert main(["admin", "recommend-template", str(public["id"]), "--off", "--db", db_url]) == 0
    capsys.readouterr()
    code, out, _ = run("search", "templates", "--raw", "recommended == True")
    assert json.loads(out) == []
