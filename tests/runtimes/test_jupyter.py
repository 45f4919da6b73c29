"""Jupyter on jupyter-runtype instances, in real containers: on an image with Jupyter
(scripts/images/jupyter, ``GPUYARD_TEST_JUPYTER_IMAGE``) it answers on the published 8080 port
with the row's token and refuses requests without it, in the launch's ``jupyter_dir``; the row
carries what the official client reads; on an image without Jupyter the instance runs and its
status_msg says why there is no Jupyter."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator

import httpx
import pytest
from test_docker_runtime import destroy_all, load_box, rent
from vastai import VastAI

from gpuyard.runtimes.docker import NO_JUPYTER, NO_LAB
from instance_reads import PATIENCE, wait_status

JUPYTER_RUNTYPES = ("jupyter_proxy ssh_proxy", "jupyter_direc ssh_direc ssh_proxy")


@pytest.fixture
def box(app, docker_url) -> Iterator[dict]:
    yield load_box(app, docker_url)
    destroy_all(app)


@pytest.fixture(scope="session")
def jupyter_image(engine) -> str:
    import docker

    name = os.environ.get("GPUYARD_TEST_JUPYTER_IMAGE")
    if not name:
        pytest.skip("set GPUYARD_TEST_JUPYTER_IMAGE to a local image with Jupyter (scripts/test "
                    "builds one with scripts/images/jupyter)")
    try:
        engine.images.get(name)
    except docker.errors.ImageNotFound:
        pytest.fail(f"GPUYARD_TEST_JUPYTER_IMAGE={name}: the engine has no such image")
    return name


def jupyter_answers(url: str) -> httpx.Response:
    """The first answer of Jupyter at ``url`` (it takes a few seconds to start)."""
    deadline = time.time() + PATIENCE
    while True:
        try:
            return httpx.get(url, timeout=10)
        except httpx.TransportError:
            assert time.time() < deadline, f"Jupyter never answered at {url}"
            time.sleep(0.2)


def console_page(account, path: str) -> str:
    """A console page as ``account`` sees it once signed in with its key."""
    with httpx.Client(base_url=account.url, follow_redirects=True, timeout=30) as client:
        login = client.get("/login").text
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', login).group(1)
        r = client.post("/login", data={"csrf_token": csrf, "api_key": account.key})
        assert r.status_code == 200 and "Sign out" in r.text
        return client.get(path).text


@pytest.mark.parametrize("runtype", JUPYTER_RUNTYPES)
def test_jupyter_answers_with_the_rows_token_and_refuses_others(api, alice, box, jupyter_image, runtype):
    iid = rent(api, image=jupyter_image, runtype=runtype, jupyter_dir="/etc")
    row = wait_status(api, iid, "running")
    token = row["jupyter_token"]
    assert len(token) == 64
    port = int(row["ports"]["8080/tcp"][0]["HostPort"])
    assert row["jupyter_url"] == f"http://127.0.0.1:{port}/?token={token}"
    base = f"http://127.0.0.1:{port}"
    status = jupyter_answers(f"{base}/api/status?token={token}")
    assert status.status_code == 200, status.text
    assert httpx.get(f"{base}/api/status").status_code == 403
    assert httpx.get(f"{base}/api/status?token={'0' * 64}").status_code == 403
    assert httpx.get(f"{base}/tree").status_code == 302  # to the login page
    # the notebook's root is jupyter_dir
    contents = httpx.get(f"{base}/api/contents?token={token}").json()
    assert "passwd" in {item["name"] for item in contents["content"]}
    # the console links to it, on the list and on the instance's page
    for page in ("/instances", f"/instances/{iid}"):
        html = console_page(alice, page)
        assert f'href="{row["jupyter_url"]}"' in html and "Open Jupyter" in html, page
    # what the official SDK reads back
    official = VastAI(api_key=alice.key, server_url=alice.url).show_instance(iid)
    assert official["jupyter_token"] == token
    assert official["ports"]["8080/tcp"][0]["HostPort"] == str(port)
    assert official["image_runtype"] == runtype


def test_lab_asked_of_an_image_without_it_runs_the_notebook_and_says_so(api, box, jupyter_image):
    iid = rent(api, image=jupyter_image, runtype="jupyter_proxy ssh_proxy", use_jupyter_lab=True)
    row = wait_status(api, iid, "running")
    assert NO_LAB in row["status_msg"]
    port = int(row["ports"]["8080/tcp"][0]["HostPort"])
    answer = jupyter_answers(f"http://127.0.0.1:{port}/api/status?token={row['jupyter_token']}")
    assert answer.status_code == 200


def test_without_jupyter_in_the_image_the_instance_runs_and_says_why(api, box, test_image):
    iid = rent(api, image=test_image, runtype="jupyter_proxy ssh_proxy")
    row = wait_status(api, iid, "running")
    assert NO_JUPYTER in row["status_msg"]
    assert row["jupyter_token"]  # made at rental; nothing answers with it


def test_other_runtypes_get_no_token_and_no_jupyter(api, box, test_image):
    iid = rent(api, image=test_image, runtype="ssh")
    row = wait_status(api, iid, "running")
    assert row["jupyter_token"] is None and row["jupyter_url"] is None
    assert "8080/tcp" not in row["ports"]
