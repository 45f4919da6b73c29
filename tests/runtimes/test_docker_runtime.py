"""The docker runtime end to end, through the API, in real containers (Podman's Docker-compatible
service in CI): the seed's env merge, an image override, onstart, a published port answering
from the host, volume data surviving destroy and relink, stop/start, destroy leaving nothing,
re-attachment after a restart, and engine errors reaching the user."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Iterator

import httpx
import pytest

from gpuyard.reconciler import Reconciler
from gpuyard.runtimes.docker import DockerRuntime
from gpuyard.runtimes.simulated import SimulatedRuntime
from gpuyard.services.market.fleet import load_fleet, parse_yaml
from gpuyard.store.db import transaction
from gpuyard.store.models import Instance, InstanceEvent
from instance_reads import PATIENCE, show, wait_status
from port_blocks import free_block

BODY = {"client_id": "me", "image": None, "env": {}, "price": None, "disk": 1, "label": None,
        "onstart": None, "force": False, "template_hash_id": None}


def _ephemeral_ports() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(n) for n in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_range(count: int = 20) -> int:
    """A start port with ``count`` free ports after it, above the ephemeral range when there is
    room: outgoing connections (the tests make thousands) take their local ports from that range
    and would race the instances for them, and their TIME-WAIT leftovers linger there."""
    low, high = _ephemeral_ports()
    first, last = (high + 1, 65535) if 65535 - high >= 1000 else (max(1024, low - 10000), low)
    return free_block(count, first, last, step=1, reuse=True)


@pytest.fixture
def box(app, docker_url) -> Iterator[dict]:
    """One docker machine (no GPU devices: gpu_runtime none) on the test engine."""
    yield load_box(app, docker_url)
    destroy_all(app)


def destroy_all(app) -> None:
    """Destroy what a test left, through the reconciler: otherwise the server's background sweep
    would make the containers of its running instances again after the test removed them, and
    the next test (whose instance ids start over) would find them."""
    with transaction(app.state.sessions) as session:
        for inst in session.query(Instance).filter(Instance.destroyed_at.is_(None)):
            inst.destroyed_at = time.time()
            inst.intended_status = "stopped"
    app.state.reconciler.sweep()


def load_box(app, docker_url: str) -> dict:
    start = free_range()
    fleet = f"""
machines:
  - hostname: docker-box
    gpu_name: RTX 4090
    num_gpus: 2
    gpu_ram: 24
    cpu_cores: 8
    cpu_ram: 32
    disk_space: 200
    inet_down: 1000
    inet_up: 1000
    dph_per_gpu: 0.5
    min_bid_per_gpu: 0.1
    runtime: docker
    docker_url: {docker_url}
    gpu_runtime: none
    direct_port_start: {start}
    direct_port_count: 20
    public_ipaddr: 127.0.0.1
"""
    with transaction(app.state.sessions) as session:
        result = load_fleet(session, parse_yaml(fleet))
    return {"machine_id": result.machine_ids["docker-box"], "ports": start}


def gpu_offer(api) -> int:
    offers = api.post("/api/v0/bundles/", json={"num_gpus": {"eq": 1}, "order": [["id", "asc"]]})
    return offers.json()["offers"][0]["id"]


def rent(api, **body) -> int:
    r = api.put(f"/api/v0/asks/{gpu_offer(api)}/", json={**BODY, **body})
    assert r.status_code == 200, r.text
    return r.json()["new_contract"]


row = show


wait = wait_status


def logs(api, iid: int, until: str | None = None, timeout: float = PATIENCE) -> str:
    deadline = time.time() + timeout
    while True:
        url = api.put(f"/api/v0/instances/request_logs/{iid}/", json={}).json()["result_url"]
        text = httpx.get(url).text
        if until is None or until in text or time.time() > deadline:
            return text
        time.sleep(0.2)


@pytest.fixture(autouse=True)
def _installation(app):
    global INSTALLATION
    INSTALLATION = app.state.installation


INSTALLATION = ""


def logs_daemon(api, iid: int) -> str:
    url = api.put(f"/api/v0/instances/request_logs/{iid}/", json={"daemon_logs": "true"}).json()["result_url"]
    return httpx.get(url).text


def containers(engine, iid: int, sparse: bool = False) -> list:
    """This server's containers for instance ``iid`` (ids restart with every test's empty
    database, so the installation label keeps earlier tests' leftovers out). ``sparse``: without
    inspecting each, for a container the reconciler may be removing meanwhile (Podman answers
    500, not 404, to the inspection of a container it has just removed)."""
    labels = [f"gpuyard.instance={iid}", f"gpuyard.installation={INSTALLATION}"]
    return engine.containers.list(all=True, filters={"label": labels}, sparse=sparse)


def test_seed_env_merge_reaches_the_container(api, box, engine, test_image):
    t = api.post("/api/v0/template/", json={
        "name": "llm", "image": test_image,
        "env": "-e MODEL_ID=deepseek-ai/DeepSeek-R1-Distill-Llama-8B -e MAX_TOKENS=4096",
        "onstart": 'echo "MODEL=$MODEL_ID TOKENS=$MAX_TOKENS HF=$HF_TOKEN"', "runtype": "ssh",
    }).json()["template"]
    iid = rent(api, template_hash_id=t["hash_id"],
               env="-e MODEL_ID=mistralai/Mistral-7B-v0.1 -e HF_TOKEN=hf_xxx")
    wait(api, iid, "running")
    [container] = containers(engine, iid)
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    assert env["MODEL_ID"] == "mistralai/Mistral-7B-v0.1"
    assert env["MAX_TOKENS"] == "4096" and env["HF_TOKEN"] == "hf_xxx"
    text = logs(api, iid, until="MODEL=")
    assert "MODEL=mistralai/Mistral-7B-v0.1 TOKENS=4096 HF=hf_xxx" in text
    assert container.labels["gpuyard.owner"] and container.labels["gpuyard.managed"] == "true"


def test_values_reach_the_container_verbatim_never_through_a_shell(api, box, engine, test_image):
    tricky = "$(touch /tmp/pwned) `id` 'quoted' \"double\" ; && |"
    iid = rent(api, image=test_image, env={"TRICKY": tricky}, runtype="ssh")
    wait(api, iid, "running")
    [container] = containers(engine, iid)
    assert f"TRICKY={tricky}" in container.attrs["Config"]["Env"]
    assert container.exec_run(["ls", "/tmp/pwned"]).exit_code != 0


def test_image_override_and_published_port_answering_from_the_host(api, box, test_image):
    t = api.post("/api/v0/template/", json={
        "name": "web", "image": "registry.invalid/not/there", "tag": "1", "env": "-p 8000:8000",
        "onstart": "mkdir -p /www && echo hello-from-gpuyard > /www/index.html && httpd -p 8000 -h /www",
        "runtype": "ssh",
    }).json()["template"]
    iid = rent(api, template_hash_id=t["hash_id"], image=test_image)
    current = wait(api, iid, "running")
    assert current["image_uuid"] == test_image if ":" in test_image else f"{test_image}:latest"
    host_port = int(current["ports"]["8000/tcp"][0]["HostPort"])
    assert box["ports"] <= host_port < box["ports"] + 20
    deadline = time.time() + PATIENCE
    while True:
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{host_port}/", timeout=2).read()
            break
        except OSError:
            assert time.time() < deadline
            time.sleep(0.2)
    assert body.decode().strip() == "hello-from-gpuyard"


def test_args_runtype_runs_onstart_as_the_main_process_and_exits(api, box, test_image):
    iid = rent(api, image=test_image, runtype="args", onstart="echo done-and-gone")
    gone = wait(api, iid, "exited")
    assert gone["status_msg"] == "exited with code 0"
    assert "done-and-gone" in logs(api, iid)


def test_stop_start_and_destroy_leaves_no_container(api, box, engine, test_image):
    iid = rent(api, image=test_image, onstart="echo started", runtype="ssh")
    wait(api, iid, "running")
    assert api.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"}).json()["success"]
    stopped = wait(api, iid, "stopped")
    assert stopped["intended_status"] == "stopped"
    [container] = containers(engine, iid)
    assert container.status in ("exited", "stopped")
    api.put(f"/api/v0/instances/{iid}/", json={"state": "running"})
    wait(api, iid, "running")
    [container] = containers(engine, iid)
    assert container.status == "running"
    assert api.request("DELETE", f"/api/v0/instances/{iid}/", json={}).json()["success"]
    assert containers(engine, iid) == []


def test_volume_data_survives_destroy_and_relink(api, box, engine, test_image):
    vol_offer = api.post("/api/v0/volumes/search/", json={}).json()["offers"][0]["id"]
    first = rent(api, image=test_image, runtype="ssh", onstart="echo kept-across-instances > /data/note",
                 volume_info={"create_new": True, "volume_id": vol_offer, "size": 1, "mount_path": "/data"})
    wait(api, first, "running")
    [c] = containers(engine, first)
    deadline = time.time() + PATIENCE
    while c.exec_run(["cat", "/data/note"]).exit_code != 0:  # the onstart has written it
        assert time.time() < deadline
        time.sleep(0.1)
    volume_id = row(api, first)["volume_info"][0]["id"]
    gone = api.request("DELETE", f"/api/v0/instances/{first}/", json={})
    assert gone.status_code == 200, gone.text
    assert containers(engine, first) == []
    second = rent(api, image=test_image, runtype="ssh", onstart="cat /data/note",
                  volume_info={"create_new": False, "volume_id": volume_id, "mount_path": "/data"})
    wait(api, second, "running")
    assert "kept-across-instances" in logs(api, second, until="kept-across")
    api.request("DELETE", f"/api/v0/instances/{second}/", json={})
    assert api.request("DELETE", "/api/v0/volumes/", params={"id": volume_id}, json={}).status_code == 200


def test_after_a_restart_the_runtime_reattaches_and_cleans_up(app, api, box, engine, test_image):
    keep = rent(api, image=test_image, runtype="ssh")
    doomed = rent(api, image=test_image, runtype="ssh")
    wait(api, keep, "running")
    wait(api, doomed, "running")
    background = app.state.reconciler
    background.stop()  # the "server" is down
    try:
        with transaction(app.state.sessions) as session:  # destroyed while it was down
            session.get(Instance, doomed).destroyed_at = time.time()
        mine = app.state.installation
        labels = {"gpuyard.managed": "true", "gpuyard.created": "0", "gpuyard.installation": mine}
        orphan = engine.containers.create(test_image, ["sleep", "600"], name=f"gpuyard-orphan-{keep}",
                                          labels=labels)
        theirs = engine.containers.create(test_image, ["sleep", "600"], name=f"other-server-{keep}",
                                          labels={**labels, "gpuyard.installation": "someone-else"})
        restarted = Reconciler(app.state.sessions, {"docker": DockerRuntime(installation=mine),
                                                    "simulated": SimulatedRuntime()})
        restarted.sweep(everything=True)
        assert len(containers(engine, keep)) == 1 and containers(engine, keep)[0].status == "running"
        assert containers(engine, doomed) == []
        names = {c.name for c in engine.containers.list(all=True)}
        assert orphan.name not in names
        assert theirs.name in names  # another gpuyard server's container is not ours to remove
        theirs.remove(force=True)
        assert row(api, keep)["actual_status"] == "running"
    finally:
        background.start()


def test_an_image_that_cannot_be_pulled_is_a_clear_error_and_rents_nothing(api, box):
    offer = gpu_offer(api)
    r = api.put(f"/api/v0/asks/{offer}/", json={**BODY, "image": "localhost/gpuyard-test/does-not-exist:1"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "image_unavailable"
    assert "does-not-exist" in r.json()["msg"] and "nothing was rented" in r.json()["msg"]
    assert gpu_offer(api) == offer and api.get("/api/v1/instances/").json()["instances"] == []


def test_an_image_whose_registry_answers_slowly_is_still_a_clear_error(api, box, slow_registry):
    # The engine takes several seconds to give up on this registry: the launch waits for its
    # verdict on the image, not for a fixed time.
    offer = gpu_offer(api)
    image = f"{slow_registry}/gpuyard-test/does-not-exist:1"
    r = api.put(f"/api/v0/asks/{offer}/", json={**BODY, "image": image})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "image_unavailable" and "nothing was rented" in r.json()["msg"]
    assert slow_registry in r.json()["msg"]
    assert gpu_offer(api) == offer and api.get("/api/v1/instances/").json()["instances"] == []


def test_unreachable_engine_is_a_clear_error_and_rents_nothing(app, api, tmp_path):
    fleet = f"""
machines:
  - hostname: dead-box
    gpu_name: RTX 3090
    num_gpus: 1
    gpu_ram: 24
    cpu_cores: 8
    cpu_ram: 32
    disk_space: 100
    inet_down: 100
    inet_up: 100
    dph_per_gpu: 0.2
    min_bid_per_gpu: 0.1
    runtime: docker
    docker_url: unix://{tmp_path}/nothing.sock
    gpu_runtime: none
"""
    with transaction(app.state.sessions) as session:
        load_fleet(session, parse_yaml(fleet))
    offer = api.post("/api/v0/bundles/", json={"gpu_name": {"eq": "RTX 3090"}}).json()["offers"][0]
    r = api.put(f"/api/v0/asks/{offer['id']}/", json={**BODY, "image": "busybox"})
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "engine_unavailable" and "unreachable" in r.json()["msg"]
    again = api.post("/api/v0/bundles/", json={"gpu_name": {"eq": "RTX 3090"}}).json()["offers"]
    assert [o["id"] for o in again] == [offer["id"]]
    assert api.get("/api/v1/instances/").json()["instances"] == []


def host_port(row: dict, key: str = "8000/tcp") -> int:
    return int(row["ports"][key][0]["HostPort"])


def answer(port: int) -> str:
    deadline = time.time() + PATIENCE
    while True:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode().strip()
        except OSError:
            assert time.time() < deadline
            time.sleep(0.2)


SERVE = "mkdir -p /www && echo served-by-$GPUYARD_INSTANCE_ID > /www/index.html && httpd -f -p 8000 -h /www"


def test_a_host_port_taken_by_something_else_is_skipped(api, box, engine, test_image):
    first = box["ports"]
    with socket.socket() as squatter:  # a process of the machine holds the range's first port
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("0.0.0.0", first))
        squatter.listen()
        iid = rent(api, image=test_image, env="-p 8000:8000", runtype="args", onstart=SERVE)
        current = wait(api, iid, "running")
        assert host_port(current) == first + 1  # the next free port of the range
        [container] = containers(engine, iid)
        assert container.attrs["HostConfig"]["PortBindings"]["8000/tcp"][0]["HostPort"] == str(first + 1)
        assert f"VAST_TCP_PORT_8000={first + 1}" in container.attrs["Config"]["Env"]
        assert answer(first + 1) == f"served-by-{iid}"

        # a container gpuyard did not make publishes the next one
        foreign = engine.containers.run(test_image, ["sleep", "600"], detach=True,
                                        ports={"80/tcp": first + 2})
        try:
            other = rent(api, image=test_image, env="-p 8000:8000", runtype="args", onstart=SERVE)
            assert host_port(wait(api, other, "running")) == first + 3
            assert answer(first + 3) == f"served-by-{other}"
            assert host_port(row(api, iid)) == first + 1
        finally:
            foreign.remove(force=True)


def test_a_container_the_machine_lost_is_made_again(app, api, box, engine,
                                                    test_image):
    iid = rent(api, image=test_image, runtype="ssh")
    wait(api, iid, "running")
    [container] = containers(engine, iid)
    container.remove(force=True)  # the machine lost it
    with transaction(app.state.sessions) as session:  # and someone asks for a restart
        inst = session.get(Instance, iid)
        inst.launch = {**inst.launch, "pending": "restart"}
        inst.generation += 1
    deadline = time.time() + PATIENCE
    while "the runtime lost the instance" not in logs_daemon(api, iid):  # it makes it again
        assert time.time() < deadline
        time.sleep(0.1)
    [again] = containers(engine, iid)
    assert again.id != container.id
    assert wait(api, iid, "running")["status_msg"].startswith("running")


def test_reboot_restarts_the_container_and_deleted_volumes_leave_the_engine(app, api, box, engine,
                                                                            test_image):
    vol_offer = api.post("/api/v0/volumes/search/", json={}).json()["offers"][0]["id"]
    iid = rent(api, image=test_image, runtype="ssh", onstart="echo boot",
               volume_info={"create_new": True, "volume_id": vol_offer, "size": 1, "mount_path": "/v"})
    wait(api, iid, "running")
    [before] = containers(engine, iid)
    started = before.attrs["State"]["StartedAt"]
    assert api.put(f"/api/v0/instances/reboot/{iid}/", json={}).json()["success"]
    wait(api, iid, "running")
    [after] = containers(engine, iid)
    assert after.id == before.id and after.attrs["State"]["StartedAt"] != started, logs_daemon(api, iid)
    volume_id = row(api, iid)["volume_info"][0]["id"]
    engine_volume = before.attrs["Mounts"][0]["Name"]
    api.request("DELETE", f"/api/v0/instances/{iid}/", json={})
    assert api.request("DELETE", "/api/v0/volumes/", params={"id": volume_id}, json={}).status_code == 200
    app.state.reconciler.collect_garbage()
    assert engine_volume not in {v.name for v in engine.volumes.list()}


STOP_GRACE = 5  # seconds the runtime gives a container to stop (STOP_SECONDS) before the kill


@pytest.mark.parametrize("runtype", ["args", "ssh"])
def test_stop_and_reboot_end_a_shell_that_ignores_sigterm_at_once(api, box, engine, test_image,
                                                                   runtype):
    # As a container's PID 1, a shell without a TERM handler ignores SIGTERM: without an init
    # process the engine waits out the whole grace period and kills it (exit code 137).
    iid = rent(api, image=test_image, runtype=runtype,
               onstart="echo started; while :; do sleep 1; done")
    wait(api, iid, "running")
    logs(api, iid, until="started")
    began = time.monotonic()
    assert api.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"}).json()["success"]
    stopped = wait(api, iid, "stopped")
    took = time.monotonic() - began
    assert stopped["status_msg"] == "stopped" and stopped["intended_status"] == "stopped"
    [container] = containers(engine, iid)
    assert container.attrs["State"]["ExitCode"] == 143  # ended by the TERM, not killed (137)
    assert took < STOP_GRACE, f"the stop took {took:.1f} s: the shell waited for the kill"

    api.put(f"/api/v0/instances/{iid}/", json={"state": "running"})
    wait(api, iid, "running")
    [before] = containers(engine, iid)
    began = time.monotonic()
    assert api.put(f"/api/v0/instances/reboot/{iid}/", json={}).json()["success"]
    rebooted = wait(api, iid, "running")
    took = time.monotonic() - began
    [after] = containers(engine, iid)
    assert after.attrs["State"]["StartedAt"] != before.attrs["State"]["StartedAt"]
    assert rebooted["status_msg"].startswith("running")
    assert took < STOP_GRACE, f"the reboot took {took:.1f} s: the shell waited for the kill"


# -- an engine that stops answering (through a proxy socket in front of the test engine) -------
@pytest.fixture
def far_box(app, engine_proxy) -> Iterator[dict]:
    """A docker machine whose engine is reached through ``engine_proxy``."""
    yield {**load_box(app, engine_proxy.url), "proxy": engine_proxy}
    destroy_all(app)


def sweep(app) -> None:
    """What the server's background sweep does, now (it would within seconds)."""
    app.state.reconciler.sweep(everything=True)


def test_an_unreachable_engine_shows_unknown_and_then_the_real_status(app, api, far_box, engine,
                                                                      test_image):
    iid = rent(api, image=test_image, env="-p 8000:8000", runtype="ssh")
    before = wait(api, iid, "running")
    far_box["proxy"].down()
    sweep(app)
    lost = wait(api, iid, "unknown")
    assert lost["status_msg"].startswith("engine unreachable since "), lost["status_msg"]
    assert lost["ports"] == before["ports"] and lost["ssh_port"] == before["ssh_port"]
    assert lost["intended_status"] == "running"
    since = lost["status_msg"]
    sweep(app)
    assert row(api, iid)["status_msg"] == since  # since the first time, not the last

    # a stop asked meanwhile is carried out once the engine answers
    assert api.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"}).json()["success"]
    assert row(api, iid)["actual_status"] == "unknown"
    [container] = containers(engine, iid)
    assert container.status == "running"
    far_box["proxy"].up()
    sweep(app)
    stopped = wait(api, iid, "stopped")
    assert stopped["status_msg"] == "stopped"
    assert containers(engine, iid)[0].status in ("exited", "stopped")
    api.put(f"/api/v0/instances/{iid}/", json={"state": "running"})
    assert wait(api, iid, "running")["ports"] == before["ports"]


def test_a_running_instance_reads_running_again_when_its_engine_answers(app, api, far_box,
                                                                        test_image):
    iid = rent(api, image=test_image, runtype="ssh")
    wait(api, iid, "running")
    far_box["proxy"].down()
    sweep(app)
    wait(api, iid, "unknown")
    far_box["proxy"].up()
    sweep(app)
    back = wait(api, iid, "running")  # this sweep, or the next once the engine is tried again
    assert back["status_msg"].startswith("running")


def gpu_offer_counts(api) -> list[int]:
    """The GPU counts of the offers, in id order."""
    found = api.post("/api/v0/bundles/", json={"order": [["id", "asc"]]}).json()["offers"]
    return sorted(o["num_gpus"] for o in found)


def dry_run_port(api, test_image) -> int:
    """The host port the next launch with ``-p 8000:8000`` would get (a dry run rents nothing)."""
    r = api.put(f"/api/v0/asks/{gpu_offer(api)}/", json={**BODY, "image": test_image,
                                                         "env": "-p 8000:8000", "runtype": "args",
                                                         "dry_run": True})
    assert r.status_code == 200, r.text
    return host_port(r.json()["launch"])


def events_of(app, iid: int) -> list[str]:
    with transaction(app.state.sessions, write=False) as session:
        return [e.text for e in session.query(InstanceEvent).filter_by(instance_id=iid)
                .order_by(InstanceEvent.id)]


def test_destroy_while_the_engine_is_unreachable_holds_gpus_and_ports_until_the_container_goes(
        app, api, far_box, engine, test_image):
    iid = rent(api, image=test_image, env="-p 8000:8000", runtype="args", onstart="sleep 600")
    port = host_port(wait(api, iid, "running"))
    assert gpu_offer_counts(api) == [1]  # the other GPU
    far_box["proxy"].down()
    gone = api.request("DELETE", f"/api/v0/instances/{iid}/", json={})
    assert gone.status_code == 200 and gone.json()["success"], gone.text
    assert row(api, iid) is None  # destroyed for its owner
    sweep(app)
    # its container may still run there: its GPU and its host port are not handed out
    assert gpu_offer_counts(api) == [1]
    assert dry_run_port(api, test_image) != port
    [container] = containers(engine, iid)
    assert container.status == "running"
    assert any(e.startswith("not removed yet: ") for e in events_of(app, iid))

    far_box["proxy"].up()
    sweep(app)  # (or the next one, once the engine is tried again)
    deadline = time.time() + PATIENCE
    while containers(engine, iid, sparse=True):
        assert time.time() < deadline
        time.sleep(0.1)
    deadline = time.time() + PATIENCE
    while gpu_offer_counts(api) != [1, 2]:
        assert time.time() < deadline
        time.sleep(0.1)
    assert dry_run_port(api, test_image) == port
    assert "removed from the machine" in events_of(app, iid)


def test_a_machine_declared_lost_gives_back_what_its_destroyed_instances_held(
        app, api, far_box, engine, test_image, db_url, capsys):
    from gpuyard.cli.main import main

    iid = rent(api, image=test_image, env="-p 8000:8000", runtype="args", onstart="sleep 600")
    port = host_port(wait(api, iid, "running"))
    far_box["proxy"].down()
    assert api.request("DELETE", f"/api/v0/instances/{iid}/", json={}).json()["success"]
    assert gpu_offer_counts(api) == [1]

    capsys.readouterr()
    code = main(["admin", "machine-lost", str(far_box["machine_id"]), "--db", db_url])
    out = capsys.readouterr().out
    assert code == 0 and f"instance(s) {iid}" in out, out
    assert gpu_offer_counts(api) == [1, 2]
    assert dry_run_port(api, test_image) == port
    # should the machine answer again after all, its container is an orphan, and goes
    far_box["proxy"].up()
    deadline = time.time() + PATIENCE
    while containers(engine, iid, sparse=True):  # (the engine is tried again within a second)
        assert time.time() < deadline
        app.state.reconciler.collect_garbage(min_age=0)
        time.sleep(0.1)
