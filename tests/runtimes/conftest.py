"""Fixtures for the docker runtime tests: a Docker Engine API to run containers on.

``scripts/test`` starts Podman and sets ``GPUYARD_TEST_DOCKER_URL`` (its socket) and
``GPUYARD_TEST_IMAGE`` (a local busybox image, no registry needed). Without them the fixtures look
for an engine of their own (``DOCKER_HOST``, ``/var/run/docker.sock``, Podman's sockets) that
answers and has a busybox image; when there is none, the tests that need one are skipped.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

MANAGED_LABEL = "gpuyard.managed=true"
DEFAULT_IMAGES = (
    "localhost/gpuyard-test/busybox:latest", "busybox:latest", "docker.io/library/busybox:latest",
)
NO_ENGINE = (
    "docker runtime tests need a Docker or Podman engine: run scripts/test (it starts Podman), or set "
    "GPUYARD_TEST_DOCKER_URL=unix:///path/to.sock and GPUYARD_TEST_IMAGE=<a local image with busybox>"
)


def _client(url: str):
    import docker

    return docker.DockerClient(base_url=url, timeout=10)


def _answers(url: str) -> bool:
    try:
        client = _client(url)
    except Exception:
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


def _local_image(url: str, names: tuple[str, ...]) -> str | None:
    """The first of ``names`` the engine has locally (nothing is pulled)."""
    import docker

    client = _client(url)
    try:
        for name in names:
            try:
                client.images.get(name)
                return name
            except docker.errors.ImageNotFound:
                continue
        return None
    finally:
        client.close()


def _candidate_urls() -> list[str]:
    urls = []
    if os.environ.get("DOCKER_HOST"):
        urls.append(os.environ["DOCKER_HOST"])
    urls.append("unix:///var/run/docker.sock")
    if os.environ.get("XDG_RUNTIME_DIR"):
        urls.append(f"unix://{os.environ['XDG_RUNTIME_DIR']}/podman/podman.sock")
    urls.append("unix:///run/podman/podman.sock")
    return urls


@pytest.fixture(scope="session")
def _engine_target() -> tuple[str, str]:
    """(engine URL, image). Fails when the configured engine does not work, skips when there is none."""
    url = os.environ.get("GPUYARD_TEST_DOCKER_URL")
    wanted = os.environ.get("GPUYARD_TEST_IMAGE")
    images = (wanted,) if wanted else DEFAULT_IMAGES
    if url:
        if not _answers(url):
            pytest.fail(f"GPUYARD_TEST_DOCKER_URL={url}: the engine does not answer a ping")
        image = _local_image(url, images)
        if image is None:
            pytest.fail(f"the engine at GPUYARD_TEST_DOCKER_URL={url} has none of the images "
                        f"{', '.join(images)} (set GPUYARD_TEST_IMAGE to a local image with busybox)")
        return url, image
    for candidate in _candidate_urls():
        if candidate.startswith("unix://") and not os.path.exists(candidate[len("unix://"):]):
            continue
        if _answers(candidate):
            image = _local_image(candidate, images)
            if image is not None:
                return candidate, image
    pytest.skip(NO_ENGINE)


@pytest.fixture(scope="session")
def docker_url(_engine_target: tuple[str, str]) -> str:
    """The Docker Engine API URL the docker runtime tests use, e.g. ``unix:///tmp/…/podman.sock``."""
    return _engine_target[0]


@pytest.fixture(scope="session")
def test_image(_engine_target: tuple[str, str]) -> str:
    """A local image with busybox (sh, echo, httpd, nc, …) on that engine."""
    return _engine_target[1]


@pytest.fixture(scope="session")
def engine(docker_url: str) -> Iterator:
    """A ``docker.DockerClient`` on the test engine."""
    client = _client(docker_url)
    yield client
    client.close()


def _managed(client, installation: str | None = None) -> tuple[set[str], set[str]]:
    """The managed containers and volumes on the engine; with ``installation``, only that gpuyard
    server's (other test runs may share the engine, and their containers are not ours)."""
    labels = [MANAGED_LABEL] + ([f"gpuyard.installation={installation}"] if installation else [])
    containers = {c.id for c in client.containers.list(all=True, filters={"label": labels})}
    volumes = {v.name for v in client.volumes.list(filters={"label": labels})}
    return containers, volumes


@pytest.fixture(autouse=True)
def remove_managed_leftovers(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that uses the engine, remove the containers and volumes labelled
    ``gpuyard.managed=true`` that it left behind (best effort; what was there before stays), of
    this run's server when the test has one."""
    if not {"engine", "docker_url"} & set(request.fixturenames):
        yield
        return
    client = request.getfixturevalue("engine")
    # This test run's server only, when the test has one: runs sharing the engine keep theirs
    installation = (request.getfixturevalue("app").state.installation
                    if "app" in request.fixturenames else None)
    try:
        before_containers, before_volumes = _managed(client, installation)
    except Exception:
        before_containers, before_volumes = set(), set()
    yield
    try:
        containers, volumes = _managed(client, installation)
    except Exception:
        return
    for cid in containers - before_containers:
        try:
            client.containers.get(cid).remove(force=True, v=True)
        except Exception:
            pass
    for name in volumes - before_volumes:
        try:
            client.volumes.get(name).remove(force=True)
        except Exception:
            pass


@pytest.fixture
def slow_registry() -> Iterator[str]:
    """``localhost:PORT`` of a "registry" that accepts each connection, says nothing, and hangs up
    half a second later: the engine's pull of any image there fails, after retries that take
    several seconds (more than any fixed window would allow on a loaded machine)."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        held: list[tuple[float, socket.socket]] = []
        while not stop.is_set():
            try:
                conn, _addr = server.accept()
                held.append((time.monotonic() + 0.5, conn))
            except OSError:
                pass
            now = time.monotonic()
            for item in [h for h in held if h[0] <= now]:
                item[1].close()
                held.remove(item)
        for _until, conn in held:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"localhost:{server.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    server.close()


class EngineProxy:
    """A unix socket that forwards every connection to the test engine's socket. ``down()``
    makes the engine unreachable through it (the socket is gone and open connections are cut),
    as a machine whose engine stopped answering; ``up()`` makes it answer again."""

    def __init__(self, target: str, path: str):
        self.target, self.path = target, path
        self.url = f"unix://{path}"
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        if self._server is not None:
            return
        if os.path.exists(self.path):
            os.unlink(self.path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(self.path)
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def down(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            try:
                server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            server.close()
        if os.path.exists(self.path):
            os.unlink(self.path)
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _addr = server.accept()
            except OSError:
                return  # down()
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def engine_proxy(docker_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProxy]:
    """An :class:`EngineProxy` in front of the test engine, up (needs a unix:// engine URL)."""
    if not docker_url.startswith("unix://"):
        pytest.skip("the engine proxy forwards to a unix socket; the test engine is at " + docker_url)
    folder = tmp_path_factory.mktemp("proxy")
    proxy = EngineProxy(docker_url[len("unix://"):], str(folder / "engine.sock"))
    proxy.up()
    yield proxy
    proxy.down()
