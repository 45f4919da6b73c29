"""show machines, show machine, list machine, unlist machine, schedule maint, cancel maint, show
maints: the host side (docs/hosts.md), with the official CLI's names and flags.

A machine that is not yours is "not found" (the server's 404 message, exit 1)."""

from __future__ import annotations

import argparse

from gpuyard.cli.commands._common import declined, handles_errors, sdk_from, show_result
from gpuyard.cli.output import number, print_fields, print_json, print_table, when


def _price(value: object) -> str | None:
    return number(value, "{:g}")


def _yes_no(value: object) -> str | None:
    return None if value is None else ("yes" if value else "no")


def _gpus(row: dict) -> str:
    return f"{row.get('num_gpus')}x {row.get('gpu_name')}"


def _rentals(row: dict) -> str | None:
    """Who rents which GPU, one rental a line: ``GPU 0: bob (instance 7, on demand, running)``."""
    lines = []
    for r in row.get("rentals") or []:
        gpus = r.get("gpus") or []
        which = "no GPU"
        if gpus:
            which = ("GPU " if len(gpus) == 1 else "GPUs ") + ",".join(str(g) for g in gpus)
        kind = "bid" if r.get("is_bid") else "on demand"
        lines.append(f"{which}: {r.get('renter')} (instance {r.get('instance_id')}, {kind}, "
                     f"{r.get('status')})")
    return "\n".join(lines) or None


def _window(m: dict) -> str:
    return (f"{when(m.get('start_time'))} to {when(m.get('end_time'))} UTC "
            f"({m.get('duration_hours'):g} h, {m.get('maintenance_category')})")


def _maintenance(row: dict) -> str | None:
    return "\n".join(_window(m) for m in row.get("maintenances") or []) or None


COLUMNS = [
    ("id", "id"),
    ("hostname", "hostname"),
    ("gpus", _gpus),
    ("listed", lambda r: _yes_no(r.get("listed"))),
    ("$/GPU/h", lambda r: _price(r.get("listed_gpu_cost"))),
    ("storage $/GB/month", lambda r: _price(r.get("listed_storage_cost"))),
    ("min bid $/GPU/h", lambda r: _price(r.get("min_bid_price"))),
    ("listed until (UTC)", lambda r: when(r.get("end_date"))),
    ("offers", "offers"),
    ("rented by", _rentals),
    ("maintenance (UTC)", _maintenance),
]

DETAIL = [
    ("id", "id"),
    ("hostname", "hostname"),
    ("owner", "owner"),
    ("gpus", lambda r: f"{_gpus(r)} ({number(r.get('gpu_ram'), '{:.0f}', 0.001)} GB each)"),
    ("gpu occupancy", "gpu_occupancy"),
    ("cpu", lambda r: ", ".join(x for x in (f"{r.get('cpu_cores')} cores", r.get("cpu_name")) if x)),
    ("ram GB", lambda r: number(r.get("cpu_ram"), "{:.0f}", 0.001)),
    ("disk GB", lambda r: f"{number(r.get('disk_used'), '{:.0f}')} used of "
                          f"{number(r.get('disk_space'), '{:.0f}')}"),
    ("driver", "driver_version"),
    ("os", "os_version"),
    ("runtime", lambda r: " ".join(str(x) for x in (r.get("runtime"), r.get("docker_url")) if x) or None),
    ("address", "public_ipaddr"),
    ("location", "geolocation"),
    ("reliability %", lambda r: number(r.get("reliability2"), "{:.1f}", 100)),
    ("verification", "verification"),
    ("listed", lambda r: _yes_no(r.get("listed"))),
    ("offers", "offers"),
    ("$/GPU/hour", lambda r: _price(r.get("listed_gpu_cost"))),
    ("min bid $/GPU/hour", lambda r: _price(r.get("min_bid_price"))),
    ("storage $/GB/month", lambda r: _price(r.get("listed_storage_cost"))),
    ("upload $/GB", lambda r: _price(r.get("listed_inet_up_cost"))),
    ("download $/GB", lambda r: _price(r.get("listed_inet_down_cost"))),
    ("min GPUs per offer", "min_chunk"),
    ("listed until (UTC)", lambda r: when(r.get("end_date"))),
    ("rented by", _rentals),
    ("maintenance (UTC)", _maintenance),
]

#: What ``list machine`` can change, as ``show machine`` shows it.
LISTING = [
    ("listed", lambda r: _yes_no(r.get("listed"))),
    ("$/GPU/hour", lambda r: _price(r.get("listed_gpu_cost"))),
    ("min bid $/GPU/hour", lambda r: _price(r.get("min_bid_price"))),
    ("storage $/GB/month", lambda r: _price(r.get("listed_storage_cost"))),
    ("upload $/GB", lambda r: _price(r.get("listed_inet_up_cost"))),
    ("download $/GB", lambda r: _price(r.get("listed_inet_down_cost"))),
    ("min GPUs per offer", "min_chunk"),
    ("listed until (UTC)", lambda r: when(r.get("end_date"))),
    ("offers", "offers"),
]

MAINT_COLUMNS = [
    ("machine", "machine_id"),
    ("start (UTC)", lambda r: when(r.get("start_time"))),
    ("end (UTC)", lambda r: when(r.get("end_time"))),
    ("hours", lambda r: number(r.get("duration_hours"), "{:g}")),
    ("category", "maintenance_category"),
]


def _cell(row: dict, getter) -> str:
    value = getter(row) if callable(getter) else row.get(getter)
    return "-" if value is None else str(value)


@handles_errors
def show_machines(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        rows = sdk.show_machines()
    if getattr(args, "raw", False):
        print_json({"machines": rows})
    elif args.quiet:
        for row in rows:
            print(row.get("id"))
    elif rows:
        print_table(rows, COLUMNS)
    else:
        print("You host no machines: the operator registers them with an owner "
              "('gpuyard admin add-machine --owner', or 'owner:' in a fleet file).")
    return 0


@handles_errors
def show_machine(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        row = sdk.show_machine(args.id)
    if getattr(args, "raw", False):
        print_json([row])  # the server's answer: a list of one row, as the official CLI prints it
    elif args.quiet:
        print(row.get("id"))
    else:
        print_fields(row, DETAIL)
    return 0


@handles_errors
def list_machine(args: argparse.Namespace) -> int:
    given = ("price_gpu", "price_disk", "price_inetu", "price_inetd", "price_min_bid", "min_chunk",
             "end_date", "discount_rate", "duration", "vol_size", "vol_price")
    raw = getattr(args, "raw", False)
    with sdk_from(args) as sdk:
        before = None if raw else sdk.show_machine(args.id)  # also: is it yours, before changing it
        result = sdk.list_machine(args.id, **{k: getattr(args, k) for k in given})
        after = None if raw else sdk.show_machine(args.id)
    if raw:
        print_json(result)
        return 0
    changed = [
        {"": title, "before": _cell(before, get), "now": _cell(after, get)}
        for title, get in LISTING if _cell(before, get) != _cell(after, get)
    ]
    if changed:
        print(f"Machine {args.id} ({after.get('hostname')}) listed; changed:")
        print_table(changed, [("", ""), ("before", "before"), ("now", "now")])
    else:
        print(f"Machine {args.id} ({after.get('hostname')}) listed; nothing changed.")
    extended = result.get("extended") or 0
    if extended:
        print(f"{extended} running rental(s) on it now end {when(after.get('end_date'))} UTC too.")
    return 0


@handles_errors
def unlist_machine(args: argparse.Namespace) -> int:
    question = (f"Unlist machine {args.id}? Its offers are withdrawn, so nobody can rent it; "
                "running instances continue.")
    if declined(args, question):
        return 1
    with sdk_from(args) as sdk:
        result = sdk.unlist_machine(args.id)
    msg = result.get("msg") or f"Machine {args.id} unlisted."  # it counts the instances that keep running
    return show_result(args, result, f"{msg}\n'gpuyard list machine {args.id}' lists it again.")


@handles_errors
def schedule_maint(args: argparse.Namespace) -> int:
    end = args.sdate + args.duration * 3600
    question = (f"Schedule maintenance of machine {args.id} from {when(args.sdate)} to {when(end)} "
                f"UTC ({args.duration:g} h, {args.maintenance_category})? Its renters are warned, "
                "its offers end before the window, and interruptible instances on it stop while "
                "it lasts.")
    if declined(args, question):
        return 1
    with sdk_from(args) as sdk:
        result = sdk.schedule_maint(args.id, args.sdate, args.duration,
                                    category=args.maintenance_category)
    return show_result(args, result, result.get("msg") or "Maintenance scheduled.")


@handles_errors
def cancel_maint(args: argparse.Namespace) -> int:
    question = (f"Cancel every maintenance window of machine {args.id} that has not ended? "
                "Interruptible instances stopped for it resume.")
    if declined(args, question):
        return 1
    with sdk_from(args) as sdk:
        result = sdk.cancel_maint(args.id)
    return show_result(args, result, result.get("msg") or "Maintenance cancelled.")


@handles_errors
def show_maints(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        rows = sdk.show_maints(args.ids)
    if getattr(args, "raw", False):
        print_json(rows)
    elif args.quiet:
        for machine_id in dict.fromkeys(row.get("machine_id") for row in rows):
            print(machine_id)
    elif rows:
        print_table(rows, MAINT_COLUMNS)
    else:
        print("No maintenance windows scheduled.")
    return 0
