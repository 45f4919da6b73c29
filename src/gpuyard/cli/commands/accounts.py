"""show env-vars, create/update/delete env-var; create api-key, show api-keys, show api-key,
delete api-key, reset api-key (the official CLI's names and flags)."""

from __future__ import annotations

import argparse
import json

from gpuyard.cli.commands._common import handles_errors, sdk_from, show_result
from gpuyard.cli.output import fail, print_fields, print_json, print_table, when

MASK = "*****"  # what the official CLI shows for a hidden value
KEY_COLUMNS = [
    ("id", "id"),
    ("name", "name"),
    ("created", lambda r: when(r.get("created_at"))),
    ("last used", lambda r: when(r.get("last_used")) or "never"),
    ("permissions", "summary"),
    ("", lambda r: "(this key)" if r.get("current") else ("revoked" if r.get("revoked_at") else "")),
]
KEY_FIELDS = [
    ("id", "id"),
    ("name", "name"),
    ("created", lambda r: when(r.get("created_at"))),
    ("last used", lambda r: when(r.get("last_used")) or "never"),
    ("permissions", "summary"),
    ("document", lambda r: json.dumps(r["permissions"]) if r.get("permissions") is not None else None),
    ("key_params", lambda r: json.dumps(r["key_params"]) if r.get("key_params") is not None else None),
    ("revoked", lambda r: when(r.get("revoked_at"))),
]


# -- secrets -------------------------------------------------------------------------------------
@handles_errors
def show_env_vars(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        found = sdk.show_env_vars(show_values=True)
    shown = found if args.show_values else {name: MASK for name in found}
    if getattr(args, "raw", False):
        print_json(shown)
        return 0
    if not shown:
        print("No environment variables found.")
        return 0
    print_table([{"name": k, "value": v} for k, v in shown.items()], [("name", "name"), ("value", "value")])
    if not args.show_values:
        print("Values are hidden; -s (--show-values) shows them.")
    return 0


@handles_errors
def create_env_var(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        result = sdk.create_env_var(args.name, args.value)
    return show_result(args, result, result.get("msg") or f"Environment variable {args.name} created.")


@handles_errors
def update_env_var(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        result = sdk.update_env_var(args.name, args.value)
    return show_result(args, result, result.get("msg") or f"Environment variable {args.name} updated.")


@handles_errors
def delete_env_var(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        result = sdk.delete_env_var(args.name)
    return show_result(args, result, result.get("msg") or f"Environment variable {args.name} deleted.")


# -- API keys ------------------------------------------------------------------------------------
@handles_errors
def create_api_key(args: argparse.Namespace) -> int:
    permissions = None
    if args.permission_file:
        try:
            with open(args.permission_file, encoding="utf-8") as f:
                permissions = json.load(f)
        except FileNotFoundError:
            return fail(f"permission file {args.permission_file!r} not found")
        except (OSError, ValueError) as exc:
            return fail(f"cannot read the permission file {args.permission_file!r}: {exc}")
    with sdk_from(args) as sdk:
        result = sdk.create_api_key(args.name, permissions, key_params=args.key_params)
    if getattr(args, "raw", False):
        print_json(result)
        return 0
    print(f"API key {result.get('id')} created ({result.get('summary')}):")
    print(result.get("key"))
    print("Save it now: its text is not shown again.")
    return 0


@handles_errors
def show_api_keys(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        rows = sdk.show_api_keys()
    if getattr(args, "raw", False):
        print_json(rows)
    else:
        print_table(rows, KEY_COLUMNS)
    return 0


@handles_errors
def show_api_key(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        result = sdk.show_api_key(args.id)
    if getattr(args, "raw", False):
        print_json(result)
    else:
        print_fields(result.get("apikey") or {}, KEY_FIELDS)
    return 0


@handles_errors
def delete_api_key(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        result = sdk.delete_api_key(args.id)
    return show_result(args, result, result.get("msg") or f"Deleted API key {args.id}.")


@handles_errors
def reset_api_key(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        result = sdk.reset_api_key()
    if getattr(args, "raw", False):
        print_json(result)
        return 0
    print(f"New api-key: {result.get('new_api_key')}")
    print("The old key is refused from now on; save the new one (gpuyard set api-key NEW_KEY).")
    return 0
