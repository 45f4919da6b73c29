"""search volumes, create volume, show volumes, delete volume."""

from __future__ import annotations

import argparse

from gpuyard.cli.commands._common import handles_errors, sdk_from, show_result
from gpuyard.cli.output import number, print_json, print_table, when

OFFER_COLUMNS = [
    ("id", "id"),
    ("machine", "machine_id"),
    ("disk GB", lambda r: number(r.get("disk_space"), "{:.0f}")),
    ("$/GB/month", lambda r: number(r.get("storage_cost"), "{:.3f}")),
    ("disk MB/s", lambda r: number(r.get("disk_bw"), "{:.0f}")),
    ("disk", "disk_name"),
    ("reliab %", lambda r: number(r.get("reliability"), "{:.1f}", 100)),
    ("location", "geolocation"),
    ("verification", "verification"),
]

VOLUME_COLUMNS = [
    ("id", "id"),
    ("name", lambda r: r.get("name") or r.get("label")),
    ("GB", lambda r: number(r.get("disk_space", r.get("total_space")), "{:.0f}")),
    ("status", "status"),
    ("machine", "machine_id"),
    ("instances", lambda r: ", ".join(str(i) for i in r.get("instances") or []) or None),
    ("location", "geolocation"),
    ("created", lambda r: when(r.get("start_date"))),
]


@handles_errors
def search(args: argparse.Namespace) -> int:
    from gpuyard.query import VOLUME_FIELDS, parse_query
    from gpuyard.sdk.offers import VOLUME_DEFAULTS

    # Like the official CLI, a filter adds to the default on the same field (disk_space>50 keeps
    # disk_space>=1); the SDK's string form would replace it.
    defaults = {} if args.no_default else VOLUME_DEFAULTS
    query = parse_query(" ".join(args.query), VOLUME_FIELDS, defaults)
    with sdk_from(args) as sdk:
        rows = sdk.search_volumes(query, order=args.order, limit=args.limit,
                                  storage=args.storage, no_default=True)
    if getattr(args, "raw", False):
        print_json(rows)
    elif rows:
        print_table(rows, OFFER_COLUMNS)
    else:
        print("No volume offers match.")
    return 0


@handles_errors
def create(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        result = sdk.create_volume(args.id, size=args.size, name=args.name)
    vid = result.get("volume_id")
    return show_result(args, result, f"Created volume {vid}." if vid is not None else "Created.")


@handles_errors
def show(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        rows = sdk.show_volumes(type=args.type)
    if getattr(args, "raw", False):
        print_json(rows)
    elif rows:
        print_table(rows, VOLUME_COLUMNS)
    else:
        print("No volumes.")
    return 0


@handles_errors
def delete(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        result = sdk.delete_volume(args.id)
    return show_result(args, result, f"Deleted volume {args.id}.")
