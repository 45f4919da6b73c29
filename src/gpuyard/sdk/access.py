"""SSH key and access methods of :class:`gpuyard.VastAI` (VAST-WIRE §13), with the official SDK's
signatures: account keys, keys attached to one instance, and the ssh/scp URLs of an instance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from gpuyard.sdk.http import Transport

SSH_KEYS = "/api/v0/ssh/"


def access_url(row: dict[str, Any] | None, scheme: str = "ssh") -> str:
    """``scheme://root@HOST:PORT`` for an instance row: its direct address when the row reports
    ``ports["22/tcp"]`` (an SSH server runs in the container), else its proxy address
    (``ssh_host``, ``ssh_port``); ``""`` when the row has neither."""
    if not row:
        return ""
    direct = (row.get("ports") or {}).get("22/tcp") or []
    if direct and row.get("public_ipaddr") and direct[0].get("HostPort"):
        return f"{scheme}://root@{row['public_ipaddr']}:{direct[0]['HostPort']}"
    if row.get("ssh_host") and row.get("ssh_port"):
        return f"{scheme}://root@{row['ssh_host']}:{row['ssh_port']}"
    return ""


class AccessMixin:
    _http: Transport

    # -- account keys ---------------------------------------------------------------------------

    def show_ssh_keys(self) -> list[dict]:
        """Your account's SSH public keys (id, public_key, fingerprint, created_at)."""
        result = self._http.request("GET", SSH_KEYS)
        return result["ssh_keys"] if isinstance(result, dict) and "ssh_keys" in result else result

    def create_ssh_key(self, ssh_key: str | None = None) -> dict:
        """Add a public key (its text, e.g. ``open("~/.ssh/id_ed25519.pub").read()``) to your
        account: it logs into all your instances. The answer's ``key`` has its id and fingerprint."""
        return self._http.request("POST", SSH_KEYS, body={"ssh_key": ssh_key})

    def update_ssh_key(self, id: int, ssh_key: str) -> dict:
        """Replace the text of one of your account keys."""
        return self._http.request("PUT", f"{SSH_KEYS}{int(id)}/", body={"id": int(id), "ssh_key": ssh_key})

    def delete_ssh_key(self, id: int) -> dict:
        """Remove one of your account keys: it no longer logs into your instances."""
        return self._http.request("DELETE", f"{SSH_KEYS}{int(id)}/", body={})

    # -- keys of one instance -------------------------------------------------------------------

    def attach_ssh(self, instance_id: int, ssh_key: str) -> dict:
        """Let a public key (its text) log into one instance; the answer's ``key.id`` is what
        :meth:`detach_ssh` takes."""
        return self._http.request("POST", f"/api/v0/instances/{int(instance_id)}/ssh/",
                                  body={"ssh_key": ssh_key})

    def detach_ssh(self, instance_id: int, ssh_key_id: str) -> dict:
        """Detach a key attached with :meth:`attach_ssh`."""
        return self._http.request("DELETE", f"/api/v0/instances/{int(instance_id)}/ssh/{ssh_key_id}/",
                                  body={})

    # -- addresses ------------------------------------------------------------------------------

    def _row(self, id: int) -> dict | None:
        data = self._http.request("GET", f"/api/v0/instances/{int(id)}/", params={"owner": "me"})
        row = data.get("instances") if isinstance(data, dict) else None
        return row if isinstance(row, dict) else None

    def ssh_url(self, id: int) -> str:
        """``ssh://root@HOST:PORT`` of an instance: direct when an SSH server runs in its
        container, else through the gateway; ``""`` when it has no address (yet)."""
        return access_url(self._row(id), "ssh")

    def scp_url(self, id: int) -> str:
        """As :meth:`ssh_url`, with the ``scp://`` scheme."""
        return access_url(self._row(id), "scp")
