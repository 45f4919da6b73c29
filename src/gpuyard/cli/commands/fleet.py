"""admin load-fleet: register or update machines from a YAML fleet file (docs/fleet.md);
admin machine-lost: forget the containers of a machine that is gone (docs/docker-hosts.md)."""

from __future__ import annotations

import argparse

from gpuyard.cli.output import fail


def load_fleet(args: argparse.Namespace) -> int:
    from gpuyard.cli.commands.server import _in_database
    from gpuyard.errors import GpuyardError
    from gpuyard.services.market import fleet

    try:
        machines = fleet.parse_fleet(fleet.read_fleet_file(args.file))  # checked before the db opens
        result = _in_database(args.db, lambda s: fleet.apply_fleet(s, machines))
    except GpuyardError as exc:
        return fail(exc.msg)
    print(result.summary())
    return 0


def machine_lost(args: argparse.Namespace) -> int:
    from gpuyard.cli.commands.server import _in_database
    from gpuyard.errors import GpuyardError
    from gpuyard.services.market import fleet

    try:
        print(_in_database(args.db, lambda s: fleet.declare_lost(s, args.machine_id)))
    except GpuyardError as exc:
        return fail(exc.msg)
    return 0
