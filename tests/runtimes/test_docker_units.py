"""The docker runtime's decisions, without an engine: the main process per runtype, GPU device
requests, registry logins, pull progress, and the disk-limit fallback (a fake client records
what would be sent to the engine)."""

from __future__ import annotations

import docker
import pytest

from gpuyard.runtimes.base import LaunchSpec, RuntimeError_
from gpuyard.runtimes.docker import (
    KEEP_ALIVE,
    NO_DISK_LIMIT,
    NO_INIT,
    DockerEngine,
    _Job,
    main_process,
    parse_login,
)


def spec(**kw) -> LaunchSpec:
    base = dict(instance_id=7, owner_id=3, machine_id=1, image="img", tag="1", gpus=(0, 2),
                ports={"8000/tcp": 41000}, env={"A": "x y"}, public_ip="10.0.0.5")
    return LaunchSpec(**{**base, **kw})


@pytest.mark.parametrize(
    "runtype", ["ssh", "jupyter", "ssh_direc ssh_proxy", "jupyter_direc ssh_direc ssh_proxy"]
)
def test_interactive_runtypes_run_onstart_then_stay_up(runtype):
    entry, cmd = main_process(spec(runtype=runtype, onstart="echo hi"))
    assert entry == ["sh", "-c", f"echo hi\n{KEEP_ALIVE}"] and cmd == []
    assert main_process(spec(runtype=runtype))[0] == ["sh", "-c", KEEP_ALIVE]


def test_args_runtype_onstart_is_the_main_process_else_the_image_runs_with_args():
    assert main_process(spec(runtype="args", onstart="python serve.py")) == (
        ["sh", "-c", "python serve.py"], [])
    assert main_process(spec(runtype="args", args=("--port", "8000"))) == (None, ["--port", "8000"])
    assert main_process(spec(runtype="args")) == (None, None)


def test_registry_login_parsing():
    assert parse_login("-u bob -p 's3cret pw' ghcr.io") == (
        {"username": "bob", "password": "s3cret pw", "serveraddress": "ghcr.io"}, "ghcr.io")
    assert parse_login(None) == (None, None)
    with pytest.raises(RuntimeError_) as err:
        parse_login("-u bob ghcr.io")
    assert "s3cret" not in err.value.msg


class FakeContainer:
    def start(self):
        pass


class FakeContainers:
    def __init__(self, refuse_storage: bool = False, refuse_init: bool = False):
        self.calls: list[dict] = []
        self.refuse_storage = refuse_storage
        self.refuse_init = refuse_init

    def create(self, image, **kwargs):
        self.calls.append({"image": image, **kwargs})
        if self.refuse_storage and "storage_opt" in kwargs:
            raise docker.errors.APIError("create", explanation="--storage-opt size is not supported")
        if self.refuse_init and kwargs.get("init"):
            raise docker.errors.APIError("create", explanation=(
                "container-init binary not found on the host: stat /usr/libexec/podman/catatonit: "
                "no such file or directory"))
        return FakeContainer()

    def get(self, ref):
        raise docker.errors.NotFound("no")


class FakeVolumes:
    def get(self, name):
        raise docker.errors.NotFound("no")

    def create(self, **kwargs):
        return object()


class FakeImages:
    def __init__(self):
        self.present = False

    def get(self, name):
        if not self.present:
            raise docker.errors.NotFound("no")
        return object()


class FakeApi:
    def __init__(self, images, events):
        self.images, self.events, self.auth = images, events, "unset"

    def pull(self, repo, tag=None, stream=False, decode=False, auth_config=None):
        self.auth = auth_config
        yield from self.events
        self.images.present = True


class FakeClient:
    def __init__(self, refuse_storage=False, events=(), refuse_init=False):
        self.containers = FakeContainers(refuse_storage, refuse_init)
        self.volumes = FakeVolumes()
        self.images = FakeImages()
        self.api = FakeApi(self.images, list(events))


def engine_with(client) -> DockerEngine:
    eng = DockerEngine("unix:///fake.sock", installation="inst1")
    eng._client = client
    return eng


@pytest.mark.parametrize("gpu_runtime,key,expected", [
    ("nvidia", "device_requests", ["0", "2"]),
    ("cdi", "devices", ["nvidia.com/gpu=0", "nvidia.com/gpu=2"]),
    ("none", None, None),
])
def test_gpus_are_requested_as_the_machine_says(gpu_runtime, key, expected):
    client = FakeClient()
    engine_with(client)._create_container("ref", spec(gpu_runtime=gpu_runtime), _Job("x"))
    call = client.containers.calls[-1]
    if key == "device_requests":
        assert call[key][0]["DeviceIDs"] == expected and call[key][0]["Capabilities"] == [["gpu"]]
    elif key == "devices":
        assert call[key] == expected
    else:
        assert "device_requests" not in call and "devices" not in call


def test_container_gets_env_verbatim_ports_labels_and_a_disk_limit():
    client = FakeClient()
    volume = spec(disk_gb=20, volume_ref="vol", volume_mount="/d")
    engine_with(client)._create_container("gpuyard-i7-x", volume, _Job("x"))
    call = client.containers.calls[-1]
    assert call["environment"]["A"] == "x y" and call["environment"]["VAST_TCP_PORT_8000"] == "41000"
    assert call["environment"]["PUBLIC_IPADDR"] == "10.0.0.5"
    assert call["ports"] == {"8000/tcp": 41000}
    assert call["labels"]["gpuyard.instance"] == "7" and call["labels"]["gpuyard.owner"] == "3"
    assert call["labels"]["gpuyard.installation"] == "inst1"
    assert call["storage_opt"] == {"size": "20G"}
    assert call["volumes"] == {"vol": {"bind": "/d", "mode": "rw"}}


def test_engines_without_disk_limits_run_without_and_say_so():
    client = FakeClient(refuse_storage=True)
    job = _Job("x")
    engine_with(client)._create_container("ref", spec(disk_gb=20), job)
    assert "storage_opt" not in client.containers.calls[-1]
    assert job.notes == ["disk limit not enforced: this engine's storage driver has none"]


def test_the_main_process_runs_under_the_engines_init_or_without_one_and_says_so():
    client = FakeClient()
    engine_with(client)._create_and_start("ref", spec(disk_gb=0), _Job("x"))
    assert [c["init"] for c in client.containers.calls] == [True]
    client = FakeClient(refuse_init=True, refuse_storage=True)
    job = _Job("x")
    engine_with(client)._create_and_start("ref", spec(disk_gb=20), job)
    assert client.containers.calls[-1]["init"] is False
    assert "storage_opt" not in client.containers.calls[-1]
    assert job.notes == [NO_DISK_LIMIT, NO_INIT]


def test_pull_progress_reaches_the_status_and_credentials_do_not():
    events = [
        {"status": "Pulling fs layer", "id": "a"},
        {"status": "Downloading", "id": "a",
         "progressDetail": {"current": 500_000_000, "total": 1_000_000_000}},
        {"status": "Downloading", "id": "b", "progressDetail": {"current": 0, "total": 1_000_000_000}},
    ]
    client = FakeClient(events=events)
    job = _Job("x")
    engine_with(client)._ensure_image(spec(image_login="-u bob -p s3cret reg.example"), job)
    assert job.msg == "pulling img:1: 25% (500.0 MB of 2.0 GB)"
    assert client.api.auth == {"username": "bob", "password": "s3cret", "serveraddress": "reg.example"}
    assert "s3cret" not in job.msg


def test_a_failed_pull_is_a_clear_error():
    client = FakeClient(events=[{"error": "manifest for img:1 not found"}])
    with pytest.raises(RuntimeError_) as err:
        engine_with(client)._ensure_image(spec(), _Job("x"))
    assert err.value.msg == "pulling img:1 failed: manifest for img:1 not found"


@pytest.mark.parametrize("msg", [
    "cannot listen on the TCP port: listen tcp4 :41000: bind: address already in use",  # Podman
    "driver failed programming external connectivity on endpoint gpuyard-i7-x (0123): Bind for "
    "0.0.0.0:41000 failed: port is already allocated",  # Docker
])
def test_a_taken_host_port_moves_to_the_next_free_one_of_the_range(msg):
    taken = spec(ports={"8000/tcp": 41000, "22/tcp": 41001}, port_range=(41000, 5),
                 reserved_ports=frozenset({41002}))
    tried: set[int] = set()
    assert DockerEngine._move_taken_port(taken, msg, tried) == {"8000/tcp": 41003, "22/tcp": 41001}
    assert tried == {41000}
    assert DockerEngine._move_taken_port(taken, "no such device nvidia.com/gpu=0", set()) is None


def test_a_range_without_a_free_port_is_a_clear_error():
    full = spec(ports={"8000/tcp": 41000}, port_range=(41000, 2), reserved_ports=frozenset({41001}))
    with pytest.raises(RuntimeError_) as err:
        DockerEngine._move_taken_port(full, "listen tcp4 :41000: bind: address already in use", set())
    assert err.value.msg == ("host port 41000 for 8000/tcp is taken on the machine and its direct "
                             "port range (41000-41001) has no free port left")
