"""create / search / update / delete template, and template versions."""

from __future__ import annotations

import argparse
from typing import Any

from gpuyard.cli.commands._common import handles_errors, sdk_from
from gpuyard.cli.output import print_json, print_table, when

COLUMNS = [
    ("id", "id"),
    ("hash_id", "hash_id"),
    ("name", "name"),
    ("image", lambda r: f"{r.get('image')}:{r.get('tag') or 'latest'}"),
    ("runtype", "runtype"),
    ("ssh", "use_ssh"),
    ("direct", lambda r: bool(r.get("ssh_direct") or r.get("jup_direct"))),
    ("private", "private"),
    ("disk GB", "recommended_disk_space"),
    ("created", "count_created"),
    ("creator", "creator_id"),
]

FLAG_ARGS = (
    "name", "image", "image_tag", "login", "env", "ssh", "jupyter", "direct", "jupyter_dir",
    "jupyter_lab", "onstart_cmd", "search_params", "no_default", "disk_space", "readme",
    "hide_readme", "desc", "public", "href", "repo",
)


def _show_template(args: argparse.Namespace, result: dict[str, Any]) -> int:
    if getattr(args, "raw", False):
        print_json(result)
        return 0
    print(result.get("msg", ""))
    print_table([result["template"]], COLUMNS)
    return 0


@handles_errors
def create(args: argparse.Namespace) -> int:
    kwargs = {k: getattr(args, k) for k in FLAG_ARGS}
    if kwargs["search_params"] is None and not kwargs["no_default"]:
        # Like the official CLI: the default machine filters are always attached unless -n.
        kwargs["search_params"] = ""
    with sdk_from(args) as sdk:
        return _show_template(args, sdk.create_template(**kwargs))


@handles_errors
def search(args: argparse.Namespace) -> int:
    query = " ".join(args.query) if args.query else None
    with sdk_from(args) as sdk:
        rows = sdk.search_templates(query, order=args.order, limit=args.limit)
    if getattr(args, "raw", False):
        print_json(rows)
    elif rows:
        print_table(rows, COLUMNS)
    else:
        print("No templates match.")
    return 0


@handles_errors
def update(args: argparse.Namespace) -> int:
    passed = {k: getattr(args, k) for k in FLAG_ARGS if hasattr(args, k)}
    if "no_default" in passed and "search_params" not in passed:
        passed.pop("no_default")
    with sdk_from(args) as sdk:
        return _show_template(args, sdk.update_template(args.HASH_ID, **passed))


@handles_errors
def delete(args: argparse.Namespace) -> int:
    if args.template_id is None and not args.hash_id:
        from gpuyard.cli.output import fail

        return fail("say which template: --template-id N (numeric id) or --hash-id HASH")
    with sdk_from(args) as sdk:
        result = sdk.delete_template(template_id=args.template_id, hash_id=args.hash_id)
    if getattr(args, "raw", False):
        print_json(result)
    else:
        print(result.get("msg", result))
    return 0


@handles_errors
def versions(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        rows = sdk.template_versions(args.template_id)
    if getattr(args, "raw", False):
        print_json(rows)
        return 0
    print_table(
        rows,
        [
            ("version", "version"),
            ("hash_id", "hash_id"),
            ("current", "current"),
            ("name", lambda r: r["content"].get("name")),
            ("image", lambda r: f"{r['content'].get('image')}:{r['content'].get('tag')}"),
            ("created_at", lambda r: when(r["created_at"])),
        ],
    )
    return 0
