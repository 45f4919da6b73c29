"""deploy/compose.yaml, through podman-compose: the recipe resolves to PostgreSQL, two API
replicas, two workers, one gateway and a load balancer and refuses to start without its secrets;
and the whole recipe comes up under podman-compose on the locally built images and works, as an
operator checks it:

* every service is ready: PostgreSQL's health check passes, api1 and api2 answer /readyz, the
  workers answer /readyz and their /metrics show their jobs running, the gateway prints its host
  key, the load balancer answers /readyz, and every gpuyard service's HEALTHCHECK passes;
* an API key made with ``gpuyard admin create-user`` inside api1's container works on api1, on
  api2 and through the load balancer;
* a template written on api1 is read on api2 (also after api2 has answered the same search);
* the periodic jobs run once per period across the two workers: the ``leases`` rows are held by
  the workers only, their turns never come closer than the job's turn, and the runs the two
  workers' /metrics count add up to the turns seen; when the worker taking the turns is stopped
  (it ends cleanly on SIGTERM), the other one takes them;
* the gateway answers SSH on a published port for an instance (simulated machine loaded with
  ``gpuyard admin load-fleet`` in a container) with a host key whose fingerprint is the one it
  printed, and the same after it is stopped (cleanly, on SIGTERM) and started, and after its
  container is made again.

Images: gpuyard's from the Containerfile (tests/deploy/image.py); PostgreSQL and Caddy, which
the recipe takes from docker.io where no registry is reachable here, from Debian's packages
(scripts/images/postgres, scripts/images/caddy, named in POSTGRES_IMAGE and CADDY_IMAGE). The
recipe runs once, on the PostgreSQL run of scripts/test (it brings its own PostgreSQL); it needs
rootful Podman (the test reaches api1, api2 and the workers at their addresses on the
project's network: the recipe publishes only the load balancer's and the gateway's ports) and
the OpenSSH client. Everything the project made (containers, network, named and anonymous
volumes) is removed at the end."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from image import podman
from prometheus_client.parser import text_string_to_metric_families
from recipe import COMPOSE, Recipe, compose_tool, wait_for
from sqlalchemy import create_engine, text

SECRETS = {"POSTGRES_PASSWORD": "pw-" + secrets.token_hex(8), "GPUYARD_SECRET_KEY": secrets.token_hex(32)}
WORKER_JOBS = {"status-refresh": 10.0, "orphan-sweep": 30.0, "engine-heartbeat": 5.0,
               "maintenance-windows": 30.0}  # name → period (the defaults the recipe runs with)
TURN = 0.9  # of a period (gpuyard/periodic.py)
WINDOW = 21.0  # seconds the periodic jobs are watched
FLEET = """machines:
  - hostname: recipe-box
    gpu_name: RTX 3090
    num_gpus: 1
    gpu_ram: 24
    cpu_cores: 8
    cpu_ram: 32
    disk_space: 200
    inet_down: 1000
    inet_up: 1000
    dph_per_gpu: 0.3
    min_bid_per_gpu: 0.1
    runtime: simulated
"""


def compose(*args: str, files: tuple[Path, ...] = (COMPOSE,), env: dict[str, str] | None = None,
            project: str = "gpuyard-compose-test") -> subprocess.CompletedProcess:
    podman()
    command = [compose_tool()]
    for f in files:
        command += ["-f", str(f)]
    full_env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    full_env.update(env if env is not None else SECRETS)
    return subprocess.run([*command, "-p", project, *args], capture_output=True, text=True,
                          env=full_env, timeout=600)


def test_the_recipe_has_the_database_two_apis_two_workers_a_gateway_and_a_load_balancer():
    done = compose("config")
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert set(services) == {"db", "api1", "api2", "worker1", "worker2", "gateway", "lb"}
    for api in ("api1", "api2"):
        assert services[api]["command"][:3] == ["serve", "--no-worker", "--no-gateway"]
    for worker in ("worker1", "worker2"):
        assert services[worker]["command"][0] == "worker"
    assert services["gateway"]["command"][0] == "gateway"
    gateway = services["gateway"]["command"]  # reachable through its published ports
    assert gateway[gateway.index("--ssh-listen") + 1] == "0.0.0.0"
    assert any(v.startswith("gateway-data:") or (isinstance(v, dict) and v.get("source") == "gateway-data")
               for v in services["gateway"]["volumes"])  # its host key outlives the container
    db_url = f"postgresql+psycopg://gpuyard:{SECRETS['POSTGRES_PASSWORD']}@db:5432/gpuyard"
    for name in ("api1", "api2", "worker1", "worker2", "gateway"):
        env = services[name]["environment"]
        assert env["GPUYARD_DB"] == db_url  # one database
        assert env["GPUYARD_SECRET_KEY"] == SECRETS["GPUYARD_SECRET_KEY"]  # one server secret
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["db"]["environment"]["POSTGRES_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"]


def test_the_recipe_refuses_to_start_without_its_secrets():
    done = compose("config", env={})
    assert done.returncode != 0
    assert "set POSTGRES_PASSWORD in deploy/.env" in done.stdout + done.stderr


# -- the whole recipe, up ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recipe(image: str, tmp_path_factory) -> Iterator[Recipe]:
    url = os.environ.get("GPUYARD_TEST_DB") or ""
    if not url.startswith("postgresql"):
        pytest.skip("the whole recipe runs once, on the PostgreSQL run of scripts/test "
                    "(GPUYARD_TEST_DB=postgresql…); it brings its own PostgreSQL")
    compose_tool()
    if os.geteuid() != 0:
        pytest.skip("the recipe test needs rootful Podman: it reaches api1, api2 and the workers "
                    "at their addresses on the project's network")
    missing = [t for t in ("ssh", "ssh-keygen") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"the recipe test needs the OpenSSH client ({', '.join(missing)} missing; "
                    "scripts/test installs openssh-client)")
    ssh_dir = tmp_path_factory.mktemp("recipe-ssh")
    ssh_dir.chmod(0o755)  # mounted read-only as ~/.ssh of uid 10001 in every gpuyard service
    recipe = Recipe(image, ssh_dir)
    try:
        recipe.up()
        yield recipe
    except BaseException:
        print(recipe.all_logs())
        raise
    finally:
        recipe.down()
    assert not recipe.leftovers(), recipe.leftovers()


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    answer = httpx.get(f"{url}/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    out = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def runs(found: dict, job: str) -> float:
    return found.get(("gpuyard_periodic_runs_total", (("job", job),)), 0.0)


def test_every_service_of_the_recipe_comes_up_ready(recipe: Recipe):
    assert set(recipe.containers()) == set(Recipe.SERVICES)
    for api in ("api1", "api2"):
        assert recipe.ready(api)["status"] == "ready"
    sweeps = {}
    for worker in ("worker1", "worker2"):
        assert recipe.ready(worker)["status"] == "ready"
        found = scrape(recipe.url(worker))
        for job in WORKER_JOBS:  # each worker runs every job (taking the turns it gets)
            assert ("gpuyard_periodic_runs_total", (("job", job),)) in found, (worker, job)
        sweeps[worker] = found[("gpuyard_reconcile_sweep_seconds_count", ())]
    fingerprints = wait_for("the gateway's host key line", lambda: recipe.host_key_lines() or None,
                            explain=lambda: recipe.logs("gateway"))
    assert fingerprints[0].startswith("SHA256:")
    assert "(listening on 0.0.0.0)" in recipe.logs("gateway")
    wait_for("the load balancer's /readyz",
             lambda: httpx.get(f"{recipe.lb}/readyz", timeout=5).status_code == 200 or None,
             explain=lambda: recipe.logs("lb"))
    for service in ("db", "api1", "api2", "worker1", "worker2", "gateway"):
        assert recipe.healthcheck(service), f"{service}'s health check fails"
    for worker in ("worker1", "worker2"):  # the reconciler's background sweep goes on
        wait_for(f"{worker}'s sweeps", lambda w=worker: scrape(recipe.url(w))[
            ("gpuyard_reconcile_sweep_seconds_count", ())] > sweeps[w] or None)


def test_an_api_key_made_in_a_container_works_on_both_replicas_and_the_load_balancer(
        recipe: Recipe):
    key = recipe.admin_key()
    for where in ("api1", "api2", "lb"):
        with recipe.http(where) as client:
            me = client.get("/api/v0/users/current/")
            assert me.status_code == 200, (where, me.text)
            assert me.json()["username"] == "alice" and me.json()["is_admin"]
        url = f"{recipe.lb if where == 'lb' else recipe.url(where)}/api/v0/users/current/"
        anonymous = httpx.get(url, timeout=30)
        assert anonymous.status_code == 401, (where, anonymous.text)
        wrong = httpx.get(url, timeout=30, headers={"Authorization": f"Bearer {key[::-1]}"})
        assert wrong.status_code == 401, (where, wrong.text)


def test_a_template_written_on_api1_is_read_on_api2(recipe: Recipe):
    name = f"recipe-{secrets.token_hex(4)}"
    search = {"select_filters": f'{{"name": {{"eq": "{name}"}}}}'}
    with recipe.http("api1") as api1, recipe.http("api2") as api2, recipe.http("lb") as lb:
        assert api2.get("/api/v0/template/", params=search).json()["templates"] == []
        made = api1.post("/api/v0/template/", json={"name": name, "image": "busybox"})
        assert made.status_code == 200, made.text
        row = made.json()["template"]
        found = api2.get("/api/v0/template/", params=search).json()["templates"]
        assert [(t["id"], t["hash_id"]) for t in found] == [(row["id"], row["hash_id"])]
        by_hash = api2.get(f"/api/v0/template/hash/{row['hash_id']}/")
        assert by_hash.status_code == 200 and by_hash.json()["template"]["image"] == "busybox"
        assert [t["id"] for t in lb.get("/api/v0/template/", params=search).json()["templates"]] \
            == [row["id"]]


def test_the_periodic_jobs_run_once_per_period_across_the_two_workers(recipe: Recipe):
    workers = {recipe.container(w)[:12]: w for w in ("worker1", "worker2")}  # hostname → service
    for worker in workers.values():
        recipe.ready(worker)
    engine = create_engine(recipe.db_url())
    try:
        def leases() -> dict[str, tuple[str, float]]:
            with engine.connect() as conn:
                return {name: (holder, expires) for name, holder, expires in conn.execute(
                    text("SELECT name, holder, expires_at FROM leases"))}

        wait_for("a lease row for every worker job", lambda: set(WORKER_JOBS) <= set(leases()) or None)
        before = {w: scrape(recipe.url(w)) for w in workers.values()}
        seen: dict[str, list[tuple[str, float]]] = {job: [leases()[job]] for job in WORKER_JOBS}
        end = time.monotonic() + WINDOW
        while time.monotonic() < end:
            now = leases()
            for job in WORKER_JOBS:
                if now[job] != seen[job][-1]:
                    seen[job].append(now[job])
            time.sleep(0.2)
        after = {w: scrape(recipe.url(w)) for w in workers.values()}
        for job, turns in seen.items():
            now = leases()[job]
            if now != turns[-1]:
                turns.append(now)
    finally:
        engine.dispose()

    for job, turns in seen.items():
        holders = {holder.split(":")[0] for holder, _expires in turns}
        assert holders <= set(workers), f"{job} was run by {holders}, not only by the workers"
        period = WORKER_JOBS[job]
        gaps = [b[1] - a[1] for a, b in zip(turns, turns[1:], strict=False)]
        assert all(gap >= period * TURN - 1e-6 for gap in gaps), (job, gaps)  # never twice a turn
    for job in ("engine-heartbeat", "status-refresh"):  # the periods shorter than the window
        period = WORKER_JOBS[job]
        new_turns = len(seen[job]) - 1
        assert WINDOW / period - 2 <= new_turns <= WINDOW / (period * TURN) + 1, (job, seen[job])
        counted = sum(runs(after[w], job) - runs(before[w], job) for w in workers.values())
        assert abs(counted - new_turns) <= 1, (job, counted, new_turns)  # each turn run once


def test_the_other_worker_takes_the_turns_when_one_stops(recipe: Recipe):
    workers = {recipe.container(w)[:12]: w for w in ("worker1", "worker2")}
    engine = create_engine(recipe.db_url())

    def heartbeat_holder() -> str:
        with engine.connect() as conn:
            holder = conn.execute(text("SELECT holder FROM leases WHERE name = 'engine-heartbeat'"))
            return workers[holder.scalar_one().split(":")[0]]

    stopped = None
    try:
        stopped = wait_for("a worker holding the engine-heartbeat turn", heartbeat_holder)
        other = "worker2" if stopped == "worker1" else "worker1"
        before = runs(scrape(recipe.url(other)), "engine-heartbeat")
        recipe.compose("stop", stopped)
        assert recipe.inspect(stopped)["State"]["ExitCode"] == 0  # it ended on SIGTERM
        wait_for(f"{other} taking the engine-heartbeat turns", lambda: (
            heartbeat_holder() == other
            and runs(scrape(recipe.url(other)), "engine-heartbeat") > before) or None,
            patience=4 * WORKER_JOBS["engine-heartbeat"] + 30)
    finally:
        engine.dispose()
        if stopped is not None:
            recipe.compose("start", stopped)  # the recipe whole again for the tests after this one
    recipe.ready(stopped)


def _ssh(recipe: Recipe, port: int, known_hosts: Path, identity: Path, strict: str
         ) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ssh", "-i", str(identity), "-o", f"UserKnownHostsFile={known_hosts}",
         "-o", f"StrictHostKeyChecking={strict}", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
         "-o", "ConnectTimeout=20", "-p", str(port), "root@127.0.0.1", "true"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def _answered_by_the_gateway(recipe: Recipe, port: int, known_hosts: Path, identity: Path,
                             strict: str, what: str) -> str:
    """ssh to the instance's port until the gateway answers; its refusal (a simulated instance
    has no shell) once the host key was accepted (``strict``: accept-new, or yes: it must be
    the one in ``known_hosts``)."""
    def probe() -> str | None:
        done = _ssh(recipe, port, known_hosts, identity, strict)
        if "gpuyard:" in done.stderr:
            return done.stderr
        if "Host key verification failed" in done.stderr:
            pytest.fail(f"{what}: the host key is not the one ssh saw first:\n{done.stderr}")
        return None

    return wait_for(what, probe, explain=lambda: recipe.logs("gateway"))


def _fingerprint(known_hosts: Path) -> str:
    listed = subprocess.run(["ssh-keygen", "-l", "-f", str(known_hosts)], capture_output=True,
                            text=True, check=True)
    (line,) = listed.stdout.splitlines()
    return line.split()[1]


def test_the_gateway_answers_ssh_with_a_host_key_that_survives_restarts(recipe: Recipe,
                                                                      tmp_path: Path):
    loaded = recipe.exec("api1", "gpuyard", "admin", "load-fleet", "/dev/stdin", stdin=FLEET)
    assert "1 machine added" in loaded or "1 updated" in loaded, loaded
    with recipe.http("api2") as api2:
        offers = api2.post("/api/v0/bundles/", json={"gpu_name": {"eq": "RTX 3090"}}).json()["offers"]
        rented = api2.put(f"/api/v0/asks/{offers[0]['id']}/",
                          json={"client_id": "me", "image": "busybox", "runtype": "ssh"})
        assert rented.status_code == 200, rented.text
        iid = rented.json()["new_contract"]

    def instance_port() -> int | None:
        with recipe.http("api1") as api1:
            row = api1.get(f"/api/v0/instances/{iid}/", params={"owner": "me"}).json()["instances"]
        if row["actual_status"] == "running" and row["ssh_port"]:
            assert row["ssh_host"] == "127.0.0.1"  # GPUYARD_PUBLIC_HOST
            return row["ssh_port"]
        return None

    port = wait_for("the instance running with a gateway port", instance_port,
                    explain=recipe.all_logs)
    assert recipe.ssh_ports[0] <= port <= recipe.ssh_ports[1]
    identity = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(identity)], check=True)
    known_hosts = tmp_path / "known_hosts"

    refusal = _answered_by_the_gateway(recipe, port, known_hosts, identity, "accept-new",
                                       "the gateway answering ssh")
    assert "simulated instance: no shell" in refusal
    fingerprint = _fingerprint(known_hosts)
    assert recipe.host_key_lines() == [fingerprint]  # what it printed is what ssh sees

    # Stopped (it ends on SIGTERM by itself) and started: the same container, the same key.
    recipe.compose("stop", "gateway")
    state = recipe.inspect("gateway")["State"]
    assert state["ExitCode"] == 0, state  # not 137: killed after the stop timeout
    recipe.compose("start", "gateway")
    _answered_by_the_gateway(recipe, port, known_hosts, identity, "yes",
                             "the gateway answering ssh after a restart")
    assert recipe.host_key_lines() == [fingerprint, fingerprint]

    # A new container (as after an upgrade of the image): the key is in the gateway-data volume.
    first = recipe.container("gateway")
    recipe.compose("up", "-d", "--force-recreate", "--no-deps", "gateway")
    recipe.note_volumes()
    assert recipe.container("gateway") != first
    _answered_by_the_gateway(recipe, port, known_hosts, identity, "yes",
                             "the gateway answering ssh from a new container")
    assert recipe.host_key_lines() == [fingerprint]
