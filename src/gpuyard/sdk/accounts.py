"""Account methods of :class:`gpuyard.VastAI`: secrets (env vars, VAST-WIRE §14) and API keys
with permissions (§15), with the official SDK's signatures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from gpuyard.sdk.http import Transport

SECRETS = "/api/v0/secrets/"
API_KEYS = "/api/v0/auth/apikeys/"


class AccountsMixin:
    _http: Transport

    # -- secrets (env vars) ---------------------------------------------------------------------

    def show_env_vars(self, show_values: bool = False) -> dict:
        """Your secrets, name → value; the values are masked (``"****"``) unless
        ``show_values=True``, as the official SDK does."""
        found = self._http.request("GET", SECRETS).get("secrets", {})
        if not show_values and isinstance(found, dict):
            return {name: "****" for name in found}
        return found

    def create_env_var(self, name: str, value: str) -> dict:
        """Create a secret; every new instance gets it in its env (a 409 if it exists)."""
        return self._http.request("POST", SECRETS, body={"key": name, "value": value})

    def update_env_var(self, name: str, value: str) -> dict:
        """Change a secret's value (containers created from then on get the new one)."""
        return self._http.request("PUT", SECRETS, body={"key": name, "value": value})

    def delete_env_var(self, name: str) -> dict:
        """Delete a secret."""
        return self._http.request("DELETE", SECRETS, body={"key": name})

    # -- API keys -------------------------------------------------------------------------------

    def create_api_key(self, name: str | None, permissions: dict | None, key_params: Any = None) -> dict:
        """Create an API key. ``permissions`` is Vast's permission document, e.g.
        ``{"api": {"misc": {}, "instance_read": {}}}`` (None: a full key, which only a full key
        may create). The answer's ``key`` is the key's text, shown only this once."""
        body: dict[str, Any] = {"name": name}
        if permissions is not None:
            body["permissions"] = permissions
        if key_params is not None:
            body["key_params"] = key_params
        return self._http.request("POST", API_KEYS, body=body)

    def show_api_keys(self) -> list[dict]:
        """Your API keys (id, name, created_at, last_used, permissions; never the keys)."""
        result = self._http.request("GET", API_KEYS)
        return result["apikeys"] if isinstance(result, dict) and "apikeys" in result else result

    def show_api_key(self, id: int) -> dict:
        """One of your API keys (the answer's ``apikey``)."""
        return self._http.request("GET", f"{API_KEYS}{int(id)}/")

    def delete_api_key(self, id: int) -> dict:
        """Delete one of your API keys; it is refused from the next request on."""
        return self._http.request("DELETE", f"{API_KEYS}{int(id)}/", body={})

    def reset_api_key(self) -> dict:
        """Replace the key this client uses by a new one (``new_api_key`` in the answer). This
        client switches to the new key; the old one is refused from now on."""
        result = self._http.request("PUT", "/api/v0/commands/reset_apikey/", body={"client_id": "me"})
        new = result.get("new_api_key") if isinstance(result, dict) else None
        if new:
            self._http.use_key(new)
            self.api_key = new
        return result
