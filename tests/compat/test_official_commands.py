"""The official ``vastai`` 1.9.1 client's ``execute`` and ``copy`` (VAST-WIRE §16.1, §16.2) against
what gpuyard cannot do on a simulated instance or at all: execute on a simulated instance says it
needs a container; copy (an rsync daemon gpuyard does not run) says how to copy instead.
Execute in real containers is in tests/runtimes/test_execute.py."""

from __future__ import annotations

import pytest
import requests
from test_official_instances_cli import offer, rent, vastai  # noqa: F401 - the fixture
from vastai import VastAI

from instance_reads import wait_status


@pytest.fixture
def official(alice, vastai) -> VastAI:  # noqa: F811 - vastai isolates HOME and the XDG dirs
    return VastAI(api_key=alice.key, server_url=alice.url)


def test_execute_on_a_simulated_instance_says_it_needs_a_container(api, fleet, official):
    iid = rent(api, offer(api)["id"], image="busybox", runtype="ssh")
    wait_status(api, iid, "running")
    with pytest.raises(requests.HTTPError) as info:
        official.execute(iid, "ls /")
    assert info.value.response.status_code == 409
    assert "simulated instance" in info.value.response.json()["msg"]


@pytest.mark.parametrize(("src", "dst"), [
    ("data", "7:/workspace/"),  # an upload: PUT /api/v0/commands/rsync/
    ("7:/workspace/out", "dl"),  # a download: rsync/ too
    ("7:/workspace/", "8:/workspace/"),  # instance to instance: copy_direct/
    ("local:data", "7:/workspace/"),  # copy_direct/ with the "local" id
])
def test_the_official_copy_says_to_copy_over_ssh(vastai, api, src, dst):  # noqa: F811
    r = vastai("copy", src, dst)
    out = r.stdout + r.stderr
    assert "Failed with error 400" in out, out
    assert "scp-url" in out and "gpuyard copy" in out, out


def test_the_official_sdk_copy_gets_the_same_answer(official):
    with pytest.raises(requests.HTTPError) as info:
        official.copy("data", "7:/workspace/")
    body = info.value.response.json()
    assert info.value.response.status_code == 400 and body["error"] == "not_supported"
    assert "scp-url" in body["msg"]
