"""Gateway ports: the range, the kernel's ephemeral range kept out, a port something else holds
skipped, a destroyed instance's port handed out again."""

from __future__ import annotations

import socket

import pytest

from gateway.conftest import rent, running_with_port
from gpuyard.gateway.ports import candidates, ephemeral_range, listens_on, parse_range


def test_ranges_parse_and_keep_out_of_the_ephemeral_range():
    assert parse_range("2200-2999") == (2200, 2999)
    for bad in ("2200", "2999-2200", "a-b", "0-10", "2200-70000"):
        with pytest.raises(ValueError, match="FIRST-LAST"):
            parse_range(bad)
    low, high = ephemeral_range()
    assert candidates(2200, 2210) == [2200, 2202, 2204, 2206, 2208]
    assert candidates(low, min(high, low + 100)) == []
    assert listens_on(2200, "jupyter_proxy ssh_proxy") == [2200, 2201]
    assert listens_on(2200, "ssh_proxy") == [2200]


def test_a_port_held_on_the_host_is_skipped_and_a_destroyed_instances_port_freed(
        api, gateway, machines):
    holder = socket.socket()
    holder.bind(("127.0.0.1", gateway.first_port))
    holder.listen(1)
    try:
        iid = rent(api, "RTX 3090", image="pytorch/pytorch", runtype="ssh")
        port = running_with_port(api, gateway, iid)["ssh_port"]
        assert port == gateway.first_port + 2
    finally:
        holder.close()
    r = api.request("DELETE", f"/api/v0/instances/{iid}/", json={})
    assert r.status_code == 200, r.text
    gateway.sync_now()
    assert port not in gateway.listening()
    again = rent(api, "RTX 3090", image="pytorch/pytorch", runtype="ssh")
    assert running_with_port(api, gateway, again)["ssh_port"] == port
