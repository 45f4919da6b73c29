"""admin credit, admin quota (on the database, like the other admin commands) and usage (through
the server)."""

from __future__ import annotations

import argparse

from gpuyard.cli.commands._common import handles_errors, sdk_from
from gpuyard.cli.output import fail, print_json, print_table, when


def _run(args: argparse.Namespace, work):
    from gpuyard.cli.commands.server import _in_database

    return _in_database(args.db, work)


def grant_credit(args: argparse.Namespace) -> int:
    from gpuyard.errors import GpuyardError
    from gpuyard.services.ledger.billing import grant_credit as grant
    from gpuyard.services.ledger.billing import money

    try:
        row = _run(args, lambda s: grant(s, args.name, args.amount, args.note))
    except GpuyardError as exc:
        return fail(exc.msg)
    verb = "Granted" if row["amount"] > 0 else "Took back"
    print(f"{verb} {money(abs(row['amount']))} {'to' if row['amount'] > 0 else 'from'} "
          f"{row['user']}; balance now {money(row['balance'])}.")
    return 0


def _limit(value, unit: str = "") -> str:
    return "none" if value is None else f"{value:g}{unit}"


def set_quota(args: argparse.Namespace) -> int:
    from gpuyard.errors import GpuyardError
    from gpuyard.services.ledger import billing

    given = {name: getattr(args, name) for name in billing.QUOTAS if getattr(args, name) is not None}
    try:
        row = _run(args, lambda s: billing.set_quota(s, args.name, clear=args.clear, **given))
    except GpuyardError as exc:
        return fail(exc.msg)
    quota, use = row["quota"], row["in_use"]
    if given or args.clear:
        print(f"Quota of {row['user']} updated.")
    print_table([
        {"quota": "max_gpus", "limit": _limit(quota["max_gpus"]), "in use": f"{use['gpus']}"},
        {"quota": "max_dph", "limit": _limit(quota["max_dph"], " $/h"), "in use": f"{use['dph']:.4g} $/h"},
        {"quota": "max_volume_gb", "limit": _limit(quota["max_volume_gb"], " GB"),
         "in use": f"{use['volume_gb']:g} GB"},
    ], [("quota", "quota"), ("limit", "limit"), ("in use", "in use")])
    return 0


@handles_errors
def show_usage(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        report = sdk.usage(by=args.by, since=args.since, until=args.until)
    if getattr(args, "raw", False):
        print_json(report)
        return 0
    who = "everyone" if report["everyone"] else "you"
    print(f"Usage of {who} from {when(report['since'])} to {when(report['until'])} UTC, by {report['by']}:")
    rows = [*report["rows"], report["total"]] if report["rows"] else []
    if not rows:
        print("No usage in that window.")
        return 0
    print_table(rows, [
        (report["by"], "key"),
        ("GPU-hours", lambda r: f"{r['gpu_hours']:.2f}"),
        ("disk GB-hours", lambda r: f"{r['disk_gb_hours']:.1f}"),
        ("GPU $", lambda r: f"{r['gpu_cost']:.2f}"),
        ("disk $", lambda r: f"{r['disk_cost']:.2f}"),
        ("cost $", lambda r: f"{r['cost']:.2f}"),
    ])
    return 0
