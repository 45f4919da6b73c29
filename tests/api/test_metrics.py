"""/metrics: Prometheus text with requests by route template and status, launches, and live
instances by status counted from the database."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gpuyard.metrics import Metrics
from gpuyard.periodic import PeriodicJob
from instance_reads import wait_status


def scrape(base: str) -> dict[tuple[str, tuple], float]:
    r = httpx.get(f"{base}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_requests_launches_and_instances_are_counted(api, fleet, live_server):
    before = scrape(live_server)
    offer = api.post("/api/v0/bundles/", json={"num_gpus": {"eq": 1}}).json()["offers"][0]
    r = api.put(f"/api/v0/asks/{offer['id']}/", json={"image": "busybox"})
    iid = r.json()["new_contract"]
    wait_status(api, iid, "running", timeout=5)
    assert api.put(f"/api/v0/asks/{offer['id']}/", json={"image": "busybox"}).status_code == 409
    api.get("/api/v0/instances/12345/", params={"owner": "me"})
    after = scrape(live_server)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("gpuyard_launches_total", outcome="created") == 1
    assert grew("gpuyard_launches_total", outcome="refused") == 1
    assert grew("gpuyard_http_requests_total", method="PUT", route="/api/v0/asks/{ask_id}",
                status="409") == 1
    assert grew("gpuyard_http_requests_total", method="GET",
                route="/api/v0/instances/{instance_id}", status="200") >= 1
    assert after[("gpuyard_instances", (("status", "running"),))] == 1


def test_machines_by_engine_state_and_the_worker_figures_are_reported(api, fleet, live_server):
    from prometheus_client.parser import text_string_to_metric_families as families

    found = scrape(live_server)
    assert found[("gpuyard_machines", (("engine", "online"),))] == 2
    names = {f.name for f in families(httpx.get(f"{live_server}/metrics").text)}
    assert {"gpuyard_reconcile_lag_seconds", "gpuyard_reconcile_sweep_seconds",
            "gpuyard_reconcile_backlog", "gpuyard_lease_takeovers",
            "gpuyard_engine_errors", "gpuyard_periodic_runs"} <= names
    for job in ("status-refresh", "orphan-sweep", "engine-heartbeat", "maintenance-windows"):
        assert ("gpuyard_periodic_runs_total", (("job", job),)) in found  # from 0 on


def test_periodic_runs_count_the_turns_this_process_took(app):
    ours, theirs = Metrics(), Metrics()
    done = []
    one = PeriodicJob("counted", 60, lambda: done.append("one"), app.state.sessions,
                      ours.periodic_runs)
    two = PeriodicJob("counted", 60, lambda: done.append("two"), app.state.sessions,
                      theirs.periodic_runs)
    assert one.run_once() and not two.run_once()  # one turn per period, whoever asks
    assert done == ["one"]
    assert ours.periodic_runs.labels("counted")._value.get() == 1
    assert theirs.periodic_runs.labels("counted")._value.get() == 0
