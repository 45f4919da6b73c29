"""Renting is atomic: many simultaneous requests for one offer make exactly one instance."""

from __future__ import annotations

import threading

from test_instances_api import BODY, offers


def test_concurrent_rentals_of_one_offer_make_exactly_one_instance(make_account, fleet):
    accounts = [make_account(f"renter{i}") for i in range(8)]
    with accounts[0].http() as c:
        target = next(o for o in offers(c) if o["num_gpus"] == 2)
    barrier = threading.Barrier(len(accounts))
    answers: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def attempt(account) -> None:
        with account.http() as client:
            barrier.wait()
            r = client.put(f"/api/v0/asks/{target['id']}/", json={**BODY, "image": "busybox"})
            with lock:
                answers.append((r.status_code, r.json()))

    threads = [threading.Thread(target=attempt, args=(a,)) for a in accounts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    winners = [body for status, body in answers if status == 200]
    losers = [(status, body) for status, body in answers if status != 200]
    assert len(answers) == 8 and len(winners) == 1, answers
    assert all(status == 409 and "no longer available" in body["msg"] for status, body in losers)
    owners = []
    for account in accounts:
        with account.http() as client:
            owners += client.get("/api/v1/instances/").json()["instances"]
    assert [row["id"] for row in owners] == [winners[0]["new_contract"]]
    assert owners[0]["num_gpus"] == 2
