"""The HTTP transport of the SDK: httpx, Bearer auth, JSON in and out, typed errors."""

from __future__ import annotations

import json
from typing import Any

import httpx

from gpuyard import __version__
from gpuyard.sdk.errors import ConnectionFailed, GpuyardError, error_for_status


class Transport:
    def __init__(self, base_url: str, api_key: str | None, timeout: float = 120.0):
        headers = {"User-Agent": f"gpuyard-sdk/{__version__}", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.base_url = base_url
        self._client = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def use_key(self, api_key: str) -> None:
        """Send ``api_key`` from now on (after a key reset)."""
        self._client.headers["Authorization"] = f"Bearer {api_key}"

    def fetch_text(self, url: str, timeout: float = 10.0) -> tuple[int, str]:
        """GET an absolute URL the server handed out (a log ``result_url``) without the API key,
        like the official client does; returns ``(status, text)``."""
        try:
            response = httpx.get(url, timeout=timeout,
                                 headers={"User-Agent": f"gpuyard-sdk/{__version__}"})
        except httpx.HTTPError as exc:
            raise ConnectionFailed(f"cannot fetch {url}: {exc}") from None
        return response.status_code, response.text

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        query = None
        if params:
            # Vast encoding: strings as-is, everything else JSON (VAST-WIRE §1).
            query = {
                k: v if isinstance(v, str) else json.dumps(v)
                for k, v in params.items()
                if v is not None
            }
        try:
            response = self._client.request(method, path, params=query, json=body)
        except httpx.HTTPError as exc:
            raise ConnectionFailed(
                f"cannot reach the gpuyard server at {self.base_url}: {exc}. Is it running? "
                "(start one with 'gpuyard serve'; point at another with --url or GPUYARD_URL)"
            ) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400:
            msg = data.get("msg") if isinstance(data, dict) else None
            code = data.get("error") if isinstance(data, dict) else None
            raise error_for_status(
                response.status_code,
                msg or f"HTTP {response.status_code} from {method} {path}: {response.text[:200]}",
                code if isinstance(code, str) else None,
            )
        if data is None:
            raise GpuyardError(f"the server answered {method} {path} with something not JSON")
        return data
