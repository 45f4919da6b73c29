"""Where the SDK and CLI find the server URL and the API key.

Order: explicit argument → environment (``GPUYARD_API_KEY``, ``GPUYARD_URL``) → the config file
``$XDG_CONFIG_HOME/gpuyard/config.json`` (written by ``gpuyard set api-key``) → default URL.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8686"


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gpuyard" / "config.json"


def load_config() -> dict[str, Any]:
    path = config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_config(**values: Any) -> Path:
    """Merge ``values`` into the config file, readable by the owner only."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = load_config()
    data.update(values)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1)
    os.replace(tmp, path)
    return path


def resolve_api_key(api_key: str | None = None) -> str | None:
    return api_key or os.environ.get("GPUYARD_API_KEY") or load_config().get("api_key")


def resolve_url(server_url: str | None = None) -> str:
    url = server_url or os.environ.get("GPUYARD_URL") or load_config().get("url") or DEFAULT_URL
    return url.rstrip("/")
