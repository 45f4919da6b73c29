"""gpuyard admin credit / admin quota (on the test database while the server runs), gpuyard usage
(through the server: a user's own usage, an administrator's everyone's), show user's quota
column, and serve --credit."""

from __future__ import annotations

import json
import re

import pytest

from gpuyard.cli.main import build_parser, main
from gpuyard.settings import Settings
from usage_clock import HOUR, T0, controlled


@pytest.fixture
def admin(db_url, capsys):
    def run(*args: str) -> tuple[int, str, str]:
        code = main(["admin", *args, "--db", db_url])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def as_user(capsys, monkeypatch, tmp_path, live_server):
    """``as_user(account, *argv)``: a client command as ``account``; (exit, stdout, stderr)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("GPUYARD_URL", live_server)

    def go(account, *argv: str) -> tuple[int, str, str]:
        monkeypatch.setenv("GPUYARD_API_KEY", account.key)
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return go


def rent(account, gpu: str) -> int:
    with account.http() as client:
        offers = client.post("/api/v0/bundles/", json={"order": [["id", "asc"]]}).json()["offers"]
        offer = next(o for o in offers if o["gpu_name"] == gpu and o["num_gpus"] == 1)
        r = client.put(f"/api/v0/asks/{offer['id']}/", json={"image": "busybox", "disk": 10, "label": gpu})
        assert r.status_code == 200, r.text
        return r.json()["new_contract"]


def test_admin_credit_grants_and_takes_back(admin, as_user, alice):
    code, out, _ = admin("credit", "alice", "25", "--note", "welcome")
    assert code == 0 and out == "Granted $25.00 to alice; balance now $25.00.\n"
    code, out, _ = admin("credit", "alice", "-5")
    assert code == 0 and out == "Took back $5.00 from alice; balance now $20.00.\n"
    code, _out, err = admin("credit", "alice", "lots")
    assert code == 1 and "the amount must be a number of dollars" in err
    code, _out, err = admin("credit", "nobody", "5")
    assert code == 1 and "there is no user named 'nobody'" in err
    code, out, _ = as_user(alice, "show", "user")
    assert code == 0 and re.search(r"\balice\b.*\b20\.00\b", out)


def test_admin_quota_shows_sets_and_clears(admin, as_user, alice, fleet):
    code, out, _ = admin("quota", "alice")
    assert code == 0 and re.search(r"max_gpus\s*│\s*none\s*│\s*0", out)
    code, out, _ = admin("quota", "alice", "--max-gpus", "1", "--max-dph", "2.5")
    assert code == 0 and out.startswith("Quota of alice updated.")
    assert re.search(r"max_gpus\s*│\s*1\s*│", out) and re.search(r"max_dph\s*│\s*2.5 \$/h", out)
    rent(alice, "RTX 4090")
    code, out, _ = as_user(alice, "show", "user")
    assert code == 0 and "gpus 1/1, $/h 0.401389/2.5" in out
    with alice.http() as client:
        offers = client.post("/api/v0/bundles/", json={}).json()["offers"]
        other = next(o for o in offers if o["gpu_name"] == "RTX 3090")
    code, _out, err = as_user(alice, "create", "instance", str(other["id"]), "--image", "busybox")
    assert code == 1 and "quota exceeded: max_gpus is 1" in err
    code, out, _ = admin("quota", "alice", "--clear")
    assert code == 0 and re.search(r"max_dph\s*│\s*none", out)
    code, _out, err = admin("quota", "alice", "--max-volume-gb", "-3")
    assert code == 1 and "max_volume_gb must be 0 or more" in err


def test_usage_prints_a_table_by_template_label_machine_and_user(app, as_user, alice, bob, make_account,
                                                                fleet):
    with controlled(app) as clock:
        ours, theirs = rent(alice, "RTX 4090"), rent(bob, "RTX 3090")
        clock.advance(2 * HOUR)
        for account, iid in ((alice, ours), (bob, theirs)):
            with account.http() as client:
                client.request("DELETE", f"/api/v0/instances/{iid}/", json={})
        clock.t = T0 + 5 * HOUR
        code, out, err = as_user(alice, "usage", "--since", "2026-01-01")
        assert code == 0, err
        assert out.startswith("Usage of you from 2026-01-01 00:00 to 2026-01-01 05:00 UTC, by template:")
        assert re.search(r"\(no template\)\s*│\s*2\.00\s*│\s*20\.0\s*│\s*0\.80\s*│\s*0\.00\s*│\s*0\.80", out)
        code, out, _ = as_user(alice, "usage", "--by", "label", "--since", "2026-01-01")
        assert "RTX 4090" in out and "RTX 3090" not in out  # bob's is not alice's
        root = make_account("root", admin=True)
        code, out, _ = as_user(root, "usage", "--by", "user", "--since", str(int(T0)))
        assert out.startswith("Usage of everyone") and re.search(r"\bbob\b.*0\.40", out)
        code, out, _ = as_user(root, "usage", "--by", "machine", "--since", "2026-01-01", "--raw")
        report = json.loads(out)
        assert {row["key"] for row in report["rows"]} == {
            f"{host} (machine {ident})" for host, ident in fleet.machine_ids.items()}
        code, out, _ = as_user(alice, "usage", "--since", "2026-01-02")
        assert code == 0 and "No usage in that window." in out
        code, _out, err = as_user(alice, "usage", "--since", "yesterday")
        assert code == 1 and "since must be epoch seconds or a date" in err


def test_serve_takes_credit_from_the_flag_or_the_environment(monkeypatch):
    args = build_parser().parse_args(["serve", "--credit"])
    assert args.credit is True
    assert Settings.build(db_url="sqlite://", credit=True).credit is True
    monkeypatch.setenv("GPUYARD_CREDIT", "1")
    assert Settings.build(db_url="sqlite://").credit is True
    monkeypatch.setenv("GPUYARD_CREDIT", "0")
    assert Settings.build(db_url="sqlite://").credit is False
