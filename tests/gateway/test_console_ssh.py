"""The console's instance page shows the ssh command of the gateway's address and the
gateway's host key fingerprint, and says why a simulated instance has none."""

from __future__ import annotations

import html

import httpx

from gateway.conftest import rent, running_with_port
from web.conftest import Console


def _console(live_server: str, account) -> Console:
    console = Console(httpx.Client(base_url=live_server, follow_redirects=True, timeout=30))
    r = console.post("/login", {"api_key": account.key})
    assert r.status_code == 200 and "Sign out" in r.text, r.text
    return console


def test_instance_page_shows_the_ssh_command_and_host_key(api, alice, live_server, gateway,
                                                          machines, test_image):
    iid = rent(api, "RTX 4090", image=test_image, runtype="ssh")
    port = running_with_port(api, gateway, iid)["ssh_port"]
    sim = rent(api, "RTX 3090", image="pytorch/pytorch", runtype="ssh")
    running_with_port(api, gateway, sim)
    console = _console(live_server, alice)
    try:
        page = html.unescape(console.get(f"/instances/{iid}").text)
        assert f"ssh -p {port} root@127.0.0.1" in page
        assert gateway.fingerprint.startswith("SHA256:") and gateway.fingerprint in page
        page = html.unescape(console.get(f"/instances/{sim}").text)
        assert "simulated instance: no shell" in page and gateway.fingerprint not in page
    finally:
        console.client.close()
