"""admin add-machine and probe-machine: onboarding machines by probing their Docker engine
(docs/hosts.md). The engine is read with no database open."""

from __future__ import annotations

import argparse

from gpuyard.cli.output import fail


def _ports(text: str | None) -> tuple[int, int] | None:
    from gpuyard.errors import InvalidInput

    if text is None:
        return None
    first, _, last = text.partition("-")
    if not (first.strip().isdigit() and last.strip().isdigit()) or \
            not 1 <= int(first) <= int(last) <= 65535:
        raise InvalidInput(f"--ports {text!r}: write a range of host ports such as 40000-40199")
    return int(first), int(last)


def add_machine(args: argparse.Namespace) -> int:
    from gpuyard.cli.commands.server import _in_database
    from gpuyard.errors import GpuyardError
    from gpuyard.runtimes.base import RuntimeError_
    from gpuyard.services.machines import onboarding

    try:
        listing = onboarding.Listing(name=args.name, owner=args.owner, price_gpu=args.price_gpu,
                                     price_disk=args.price_disk, public_ip=args.public_ip,
                                     ports=_ports(args.ports))
        if not 0 <= args.price_gpu <= 10_000 or not 0 <= args.price_disk <= 10_000:
            return fail("--price-gpu and --price-disk must be from 0 to 10000")
        if args.owner is not None and not args.dry_run:  # before connecting anywhere
            from gpuyard.services.market.fleet import owner_id

            _in_database(args.db, lambda s: owner_id(s, args.owner, "--owner"))
        found = onboarding.probe(args.engine_url, args.image or onboarding.DEFAULT_IMAGE)
        print(found.report())
        if args.dry_run:
            print("dry run: nothing registered")
            return 0
        _machine_id, summary = _in_database(args.db, lambda s: onboarding.register(s, found, listing))
    except (GpuyardError, RuntimeError_) as exc:
        return fail(exc.msg)
    print(summary)
    return 0


def probe_machine(args: argparse.Namespace) -> int:
    from gpuyard.cli.commands.server import _in_database
    from gpuyard.errors import GpuyardError
    from gpuyard.runtimes.base import RuntimeError_
    from gpuyard.services.machines import onboarding

    try:
        machine_id, url = _in_database(args.db, lambda s: onboarding.target(s, args.machine_id))
        found = onboarding.probe(url, args.image or onboarding.DEFAULT_IMAGE)
        print(found.report())
        print(_in_database(args.db, lambda s: onboarding.reprobe(s, machine_id, found)))
    except (GpuyardError, RuntimeError_) as exc:
        return fail(exc.msg)
    return 0
