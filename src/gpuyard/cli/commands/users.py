"""show user, set api-key, set url."""

from __future__ import annotations

import argparse

from gpuyard.cli.commands._common import handles_errors, sdk_from
from gpuyard.cli.output import number, print_json, print_table


def quota_text(user: dict) -> str | None:
    """The limits set, each with what counts against it: ``gpus 1/2, $/h 0.40/1``."""
    quota, use = user.get("quota") or {}, user.get("in_use") or {}
    parts = [f"{label} {use.get(key, 0):g}/{quota[limit]:g}"
             for label, key, limit in (("gpus", "gpus", "max_gpus"), ("$/h", "dph", "max_dph"),
                                       ("volume GB", "volume_gb", "max_volume_gb"))
             if quota.get(limit) is not None]
    return ", ".join(parts) or None


@handles_errors
def show_user(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        user = sdk.show_user()
    if getattr(args, "raw", False):
        print_json(user)
    else:
        print_table([user], [
            *[(k, k) for k in ("id", "username", "email")],
            ("balance", lambda u: number(u.get("balance"), "{:.2f}")),
            ("$/hr now", lambda u: number(u.get("dph"), "{:.4f}")),
            ("quota (use/limit)", quota_text),
            ("is_admin", "is_admin"),
        ])
    return 0


def set_api_key(args: argparse.Namespace) -> int:
    from gpuyard.sdk.config import save_config

    path = save_config(api_key=args.key.strip())
    print(f"API key saved to {path}")
    return 0


def set_url(args: argparse.Namespace) -> int:
    from gpuyard.sdk.config import save_config

    path = save_config(url=args.server_url.strip().rstrip("/"))
    print(f"Server URL saved to {path}")
    return 0
