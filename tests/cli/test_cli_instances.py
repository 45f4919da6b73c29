"""The offer, instance and volume commands, run in-process through ``main()`` against a live
server: tables by default, JSON with --raw, the server's message and exit 1 on errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

import pytest

from gpuyard.cli.main import main
from worker_pause import paused_worker


@pytest.fixture
def run(alice, fleet, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("GPUYARD_URL", alice.url)
    monkeypatch.setenv("GPUYARD_API_KEY", alice.key)

    def go(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return go


def raw(run, *argv: str):
    code, out, err = run(*argv, "--raw")
    assert code == 0, err
    return json.loads(out)


def offer_id(run, query: str = "gpu_name=RTX_4090 num_gpus=1") -> int:
    return raw(run, "search", "offers", query, "-o", "dph_total")[0]["id"]


def template_hash(run) -> str:
    t = raw(run, "create", "template", "--name", "vllm", "--image", "vllm/vllm-openai",
            "--env", "-e MODEL_ID=llama -e MAX_TOKENS=4096 -p 8000:8000", "--ssh", "--direct")
    return t["template"]["hash_id"]


def launched(run, *flags: str, query: str = "gpu_name=RTX_4090 num_gpus=1") -> int:
    """A new instance's id; with --wait, once it runs (--raw --wait prints the instance)."""
    result = raw(run, "create", "instance", str(offer_id(run, query)), *flags)
    if "--wait" in flags:
        assert result["actual_status"] == "running"
        return result["id"]
    assert result["success"] is True
    return result["new_contract"]


# -- offers ---------------------------------------------------------------------------------------

def test_search_offers_prints_a_table_of_matching_offers(run):
    code, out, err = run("search", "offers", "gpu_name=RTX_3090", "-o", "dph_total")
    assert code == 0, err
    assert "RTX 3090" in out and "RTX 4090" not in out
    assert "$/hr" in out and "Taiwan, TW" in out
    code, out, _ = run("search", "offers", "num_gpus=8")
    assert code == 0 and "No offers match." in out


def test_search_offers_raw_is_the_list_and_limit_and_order_apply(run):
    rows = raw(run, "search", "offers", "--limit", "2", "-o", "dph_total-")
    assert len(rows) == 2 and rows[0]["dph_total"] >= rows[1]["dph_total"]


def test_a_bad_query_exits_1_with_the_reason(run):
    code, out, err = run("search", "offers", "num_gpus", ">>", "2")
    assert code == 1 and out == "" and "Error:" in err and ">>" in err


# -- create instance ------------------------------------------------------------------------------

def test_create_dry_run_shows_the_merged_configuration_and_rents_nothing(run):
    thash = template_hash(run)
    offer = offer_id(run)
    code, out, err = run("create", "instance", str(offer), "--template_hash", thash,
                         "--env", "-e MAX_TOKENS=8192 -e HF_TOKEN=hf_x", "--disk", "30", "--dry-run")
    assert code == 0, err
    assert "vllm/vllm-openai" in out and thash in out
    assert "MODEL_ID=llama" in out and "MAX_TOKENS=8192" in out and "HF_TOKEN=hf_x" in out
    assert "MAX_TOKENS=4096" not in out  # the request's value won the merge
    assert "Dry run: nothing was rented." in out
    code, out, _ = run("show", "instances")
    assert code == 0 and "No instances." in out


def test_create_dry_run_shows_the_machine_filters_as_query_text(run):
    t = raw(run, "create", "template", "--name", "one gpu", "--image", "vllm/vllm-openai",
            "--search_params", "gpu_ram>=20 num_gpus=1")
    assert t["template"]["extra_filters"]["num_gpus"] == {"eq": 1}
    code, out, err = run("create", "instance", str(offer_id(run)), "--template_hash",
                         t["template"]["hash_id"], "--dry-run")
    assert code == 0, err
    line = next(x for x in out.splitlines() if x.startswith("machine filters"))
    assert "{" not in line and "gpu_ram>=20" in line.split() and "num_gpus=1" in line.split()
    assert "verified=true" in line.split()


def test_create_prints_the_new_instance(run):
    offer = offer_id(run)
    code, out, err = run("create", "instance", str(offer), "--image", "ubuntu:22.04")
    assert code == 0, err
    assert out.startswith("Started. Instance ") and f"(offer {offer})" in out


def test_create_wait_follows_the_instance_until_it_runs(run):
    code, out, err = run("create", "instance", str(offer_id(run)), "--image", "ubuntu:22.04",
                         "--env", "-p 8000:8000", "--ssh", "--wait", "--timeout", "30")
    assert code == 0, err
    assert "running" in out and "is running." in out
    assert "→ 8000/tcp" in out and "10.0.0.5:" in out  # where to reach it


PULL_ROWS = [
    {"actual_status": "loading", "status_msg": "pulling vllm/vllm-openai:latest: 0% (0 of 2.6 GB)"},
    {"actual_status": "loading", "status_msg": "pulling vllm/vllm-openai:latest: 3% (0.1 of 2.6 GB)"},
    {"actual_status": "loading", "status_msg": "pulling vllm/vllm-openai:latest: 45% (1.2 of 2.6 GB)"},
    {"actual_status": "loading", "status_msg": "pulling vllm/vllm-openai:latest: 100% (2.6 of 2.6 GB)"},
    {"actual_status": "loading", "status_msg": "starting container"},
    {"actual_status": "running", "status_msg": "running", "public_ipaddr": "10.0.0.5",
     "ports": {"8000/tcp": [{"HostIp": "0.0.0.0", "HostPort": "40001"}]}},
]


@pytest.fixture
def scripted_pull(monkeypatch):
    """``show_instance`` answers PULL_ROWS one poll after the other (then the last one), with no
    pause between polls."""
    import types

    import gpuyard.sdk.instances as sdk_instances
    from gpuyard.sdk.client import VastAI

    rows = iter(PULL_ROWS)
    last: dict = {}

    def show_instance(self, id):
        nonlocal last
        last = {"id": id, "intended_status": "running", **next(rows, last)}
        return last

    monkeypatch.setattr(VastAI, "show_instance", show_instance)
    fake_time = types.SimpleNamespace(sleep=lambda s: None, monotonic=time.monotonic, time=time.time)
    monkeypatch.setattr(sdk_instances, "time", fake_time)
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


def test_create_wait_shows_the_image_pull_as_plain_lines_without_a_terminal(run, scripted_pull):
    code, out, err = run("create", "instance", str(offer_id(run)), "--image", "vllm/vllm-openai",
                         "--wait", "--timeout", "30")
    assert code == 0, err
    lines = out.splitlines()
    pulls = [line for line in lines if "pulling vllm/vllm-openai:latest" in line]
    # 3% is within 10 points of the line before it: no line of its own
    assert [p.split(": ", 2)[-1] for p in pulls] == ["0% (0 of 2.6 GB)", "45% (1.2 of 2.6 GB)",
                                                    "100% (2.6 of 2.6 GB)"]
    assert any(line.endswith("loading: starting container") for line in lines)
    assert any(line.endswith(" running") for line in lines) and "is running." in out
    assert "10.0.0.5:40001 → 8000/tcp" in out
    assert "\x1b" not in out + err and "\r" not in out + err


def test_create_wait_draws_a_progress_bar_on_a_terminal(run, scripted_pull, monkeypatch):
    from rich.console import Console

    screen = io.StringIO()
    monkeypatch.setattr("gpuyard.cli.output.console",
                        lambda: Console(file=screen, force_terminal=True, width=120))
    code, out, err = run("create", "instance", str(offer_id(run)), "--image", "vllm/vllm-openai",
                         "--wait", "--timeout", "30")
    assert code == 0, err
    drawn = screen.getvalue()
    assert "\x1b[" in drawn and "━" in drawn  # a live bar, redrawn in place
    for shown in ("0%", "3%", "45%", "100%", "1.2 of 2.6 GB"):
        assert shown in drawn
    assert "starting container" in drawn and "running" in drawn
    assert "is running." in out


def test_create_with_a_malformed_env_exits_1_and_says_how_to_fix_it(run):
    code, out, err = run("create", "instance", str(offer_id(run)), "--image", "ubuntu",
                         "--env", "HF_TOKEN=x")
    assert code == 1 and "-e HF_TOKEN=x" in err
    assert raw(run, "show", "instances") == []


def test_create_on_an_unknown_offer_exits_1_with_the_servers_message(run):
    code, out, err = run("create", "instance", "987654", "--image", "ubuntu")
    assert code == 1 and out == "" and err.startswith("Error:") and "987654" in err


def test_onstart_file_is_sent_as_the_onstart_script(run, tmp_path):
    script = tmp_path / "start.sh"
    script.write_text("echo from-the-file\n")
    iid = launched(run, "--image", "ubuntu:22.04", "--onstart", str(script))
    assert raw(run, "show", "instance", str(iid))["onstart"] == "echo from-the-file"
    code, _, err = run("create", "instance", "1", "--image", "u", "--onstart", str(tmp_path / "no"))
    assert code == 1 and "cannot read the onstart file" in err


# -- show, change, logs, destroy ------------------------------------------------------------------

def test_show_instances_table_has_the_address_and_port_mappings(run):
    iid = launched(run, "--image", "ubuntu:22.04", "--env", "-p 8000:8000 -e A=1", "--ssh",
                   "--label", "web", "--wait")
    code, out, err = run("show", "instances")
    assert code == 0, err
    inst = raw(run, "show", "instance", str(iid))
    host_port = inst["ports"]["8000/tcp"][0]["HostPort"]
    assert f"10.0.0.5:{host_port} → 8000/tcp" in out
    assert "web" in out and "ubuntu:22.04" in out
    code, out, _ = run("show", "instances", "-q")
    assert str(iid) in out.split()


def test_an_instance_whose_engine_does_not_answer_shows_unknown_with_its_ports(run, app):
    from gpuyard.reconciler import Reconciler
    from gpuyard.runtimes.base import EngineUnreachable
    from gpuyard.runtimes.simulated import SimulatedRuntime

    class Unreachable(SimulatedRuntime):
        def status(self, ref):
            raise EngineUnreachable("the Docker engine at ssh://gpu-box is unreachable (inspect)")

    iid = launched(run, "--image", "ubuntu:22.04", "--env", "-p 8000:8000", "--wait")
    host_port = raw(run, "show", "instance", str(iid))["ports"]["8000/tcp"][0]["HostPort"]
    with paused_worker(app):  # only the reconciler below looks at the instance meanwhile
        Reconciler(app.state.sessions, {"simulated": Unreachable()}).reconcile(iid)
        code, out, err = run("show", "instances")
        assert code == 0, err
        assert "unknown" in out and "engine unreachable since" in out
        assert f"10.0.0.5:{host_port} → 8000/tcp" in out  # it may well still run there
        code, out, err = run("show", "instance", str(iid))
        assert code == 0 and "unknown" in out and "engine unreachable since" in out, out


def test_show_instance_details_and_missing_instance(run):
    iid = launched(run, "--image", "ubuntu:22.04", "--env", "-e GREETING=hi")
    code, out, err = run("show", "instance", str(iid))
    assert code == 0, err
    assert "GREETING=hi" in out and "ubuntu:22.04" in out
    code, out, err = run("show", "instance", "999999")
    assert code == 1 and "999999" in err


def test_label_stop_start_reboot_change_bid(run):
    iid = launched(run, "--image", "ubuntu:22.04", "--bid_price", "0.2")
    code, out, _ = run("label", "instance", str(iid), "my label")
    assert code == 0 and "my label" in out
    assert raw(run, "show", "instance", str(iid))["label"] == "my label"
    code, out, _ = run("stop", "instance", str(iid))
    assert code == 0 and f"Stopping instance {iid}" in out
    code, out, _ = run("start", "instance", str(iid))
    assert code == 0 and f"Starting instance {iid}" in out
    code, out, _ = run("reboot", "instance", str(iid))
    assert code == 0 and f"Rebooting instance {iid}" in out
    code, out, _ = run("change", "bid", str(iid), "--price", "0.3")
    assert code == 0 and "0.3" in out
    assert raw(run, "show", "instance", str(iid))["bid_price"] == pytest.approx(0.3)


def test_logs_prints_the_instance_log(run):
    iid = launched(run, "--image", "ubuntu:22.04", "--onstart-cmd", "echo ready-to-serve", "--wait")
    code, out, err = run("logs", str(iid), "--tail", "100")
    assert code == 0, err
    assert "ready-to-serve" in out
    code, out, _ = run("logs", str(iid), "--filter", "ready")
    assert code == 0 and all("ready" in line for line in out.splitlines())


def test_update_instance_takes_env_as_json(run):
    iid = launched(run, "--image", "ubuntu:22.04")
    code, out, err = run("update", "instance", str(iid), "--image", "ubuntu:24.04")
    assert code == 0, err
    assert f"Instance {iid} updated." in out
    assert raw(run, "show", "instance", str(iid))["image_uuid"] == "ubuntu:24.04"
    with pytest.raises(SystemExit) as exit_:
        main(["update", "instance", str(iid), "--env", "-e A=1"])
    assert exit_.value.code == 2  # argparse: --env must be a JSON object


def test_destroy_asks_first_unless_yes(run, monkeypatch):
    iid = launched(run, "--image", "ubuntu:22.04")
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    code, out, _ = run("destroy", "instance", str(iid))
    assert code == 1 and "Aborted." in out
    assert raw(run, "show", "instance", str(iid))["id"] == iid
    code, out, _ = run("destroy", "instance", str(iid), "-y")
    assert code == 0 and f"Destroyed instance {iid}" in out
    assert raw(run, "show", "instances") == []


def test_bulk_stop_and_destroy(run, monkeypatch):
    a = launched(run, "--image", "ubuntu:22.04")
    b = launched(run, "--image", "ubuntu:22.04", query="gpu_name=RTX_3090")
    code, out, _ = run("stop", "instances", str(a), str(b))
    assert code == 0 and f"Stopping instances {a}, {b}" in out
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    code, out, _ = run("destroy", "instances", str(a), str(b))
    assert code == 0 and "Destroyed instances" in out
    assert raw(run, "show", "instances") == []


# -- volumes --------------------------------------------------------------------------------------

def test_volume_commands(run):
    code, out, err = run("search", "volumes", "disk_space>=100", "-o", "storage_cost")
    assert code == 0, err
    assert "$/GB/month" in out
    ask = raw(run, "search", "volumes", "-o", "storage_cost")[0]["id"]
    code, out, err = run("create", "volume", str(ask), "-s", "25", "-n", "scratch")
    assert code == 0, err
    assert out.startswith("Created volume ")
    [vol] = raw(run, "show", "volumes")
    code, out, _ = run("show", "volumes", "-t", "local")
    assert code == 0 and "scratch" in out and "25" in out
    code, out, _ = run("delete", "volume", str(vol["id"]))
    assert code == 0 and f"Deleted volume {vol['id']}" in out
    code, out, _ = run("show", "volumes")
    assert "No volumes." in out
    code, out, err = run("delete", "volume", str(vol["id"]))
    assert code == 1 and str(vol["id"]) in err


# -- as a real process ----------------------------------------------------------------------------

def test_the_installed_command_rents_and_lists_instances(alice, fleet, tmp_path):
    env = {**os.environ, "GPUYARD_URL": alice.url, "GPUYARD_API_KEY": alice.key,
           "XDG_CONFIG_HOME": str(tmp_path)}

    def gpuyard(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gpuyard.cli.main", *args], env=env,
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)

    offers = gpuyard("search", "offers", "num_gpus=1", "--raw")
    assert offers.returncode == 0, offers.stderr
    first = json.loads(offers.stdout)[0]["id"]
    made = gpuyard("create", "instance", str(first), "--image", "ubuntu:22.04", "--ssh", "--wait")
    assert made.returncode == 0, made.stderr
    assert "is running." in made.stdout
    listed = gpuyard("show", "instances")
    assert listed.returncode == 0 and "ubuntu:22.04" in listed.stdout
    gone = gpuyard("destroy", "instance", "424242")  # no -y and no stdin: nothing happens
    assert gone.returncode == 1 and "Aborted." in gone.stdout


def test_without_disk_the_templates_recommended_disk_applies(run):
    t = raw(run, "create", "template", "--name", "big", "--image", "busybox", "--disk_space", "30")
    iid = launched(run, "--template_hash", t["template"]["hash_id"])
    assert raw(run, "show", "instance", str(iid))["disk_space"] == 30.0
    other = launched(run, "--template_hash", t["template"]["hash_id"], "--disk", "12")
    assert raw(run, "show", "instance", str(other))["disk_space"] == 12.0


def test_logs_that_cannot_be_read_exit_non_zero_with_the_reason(run, app):
    """An instance whose engine does not answer: no empty or made-up log, an error and exit 1."""
    from gpuyard.store.db import transaction
    from gpuyard.store.models import Instance, Machine

    iid = launched(run, "--image", "ubuntu:22.04", "--wait")
    with transaction(app.state.sessions) as session:
        inst = session.get(Instance, iid)
        inst.runtime, inst.runtime_ref = "docker", "gpuyard-gone"
        session.get(Machine, inst.machine_id).docker_url = "unix:///nonexistent/engine.sock"
    code, out, err = run("logs", str(iid))
    assert code == 1 and out == ""
    assert f"cannot read the logs of instance {iid}" in err and "--daemon-logs" in err
    code, out, err = run("logs", str(iid), "--daemon-logs")
    assert code == 0 and "created from ubuntu:22.04" in out
