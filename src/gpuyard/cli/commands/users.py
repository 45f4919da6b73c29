"""show user, set api-key, set url."""

from __future__ import annotations

import argparse

from gpuyard.cli.commands._common import handles_errors, sdk_from
from gpuyard.cli.output import print_json, print_table


@handles_errors
def show_user(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        user = sdk.show_user()
    if getattr(args, "raw", False):
        print_json(user)
    else:
        print_table([user], [(k, k) for k in ("id", "username", "email", "balance", "is_admin")])
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
