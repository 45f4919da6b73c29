"""search offers."""

from __future__ import annotations

import argparse

from gpuyard.cli.commands._common import handles_errors, sdk_from
from gpuyard.cli.output import number, print_json, print_table

COLUMNS = [
    ("id", "id"),
    ("machine", "machine_id"),
    ("gpus", lambda r: f"{r.get('num_gpus')}x {r.get('gpu_name')}"),
    ("gpu GB", lambda r: number(r.get("gpu_ram"), "{:.0f}", 1 / 1000)),
    ("cpu cores", lambda r: number(r.get("cpu_cores_effective"), "{:.1f}")),
    ("ram GB", lambda r: number(r.get("cpu_ram"), "{:.0f}", 1 / 1000)),
    ("disk GB", lambda r: number(r.get("disk_space"), "{:.0f}")),
    ("$/hr", lambda r: number(r.get("dph_total"), "{:.4f}")),
    ("min bid", lambda r: number(r.get("min_bid"), "{:.4f}")),
    ("reliab %", lambda r: number(r.get("reliability"), "{:.1f}", 100)),
    ("cuda", lambda r: number(r.get("cuda_max_good"), "{:.1f}")),
    ("driver", "driver_version"),
    ("net ↑/↓ Mb/s", lambda r: f"{number(r.get('inet_up'), '{:.0f}')}/"
                               f"{number(r.get('inet_down'), '{:.0f}')}"),
    ("ports", "direct_port_count"),
    ("location", "geolocation"),
    ("verification", "verification"),
]


@handles_errors
def search(args: argparse.Namespace) -> int:
    query = " ".join(args.query)
    kwargs = {
        "type": args.type, "order": args.order, "limit": args.limit, "storage": args.storage,
        "no_default": args.no_default,
    }
    with sdk_from(args) as sdk:
        rows = (sdk.search_offers_new if args.new else sdk.search_offers)(query, **kwargs)
    if getattr(args, "raw", False):
        print_json(rows)
    elif rows:
        print_table(rows, COLUMNS)
    else:
        print("No offers match.")
    return 0
