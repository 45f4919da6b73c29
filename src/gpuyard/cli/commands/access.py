"""admin list-keys, create-key, revoke-key, disable-user, enable-user: who may use the server.

They open the database themselves (``--db``), like the other admin commands; the running server
sees each change on its next request."""

from __future__ import annotations

import argparse

from gpuyard.cli.output import fail, print_table, when


def _run(args: argparse.Namespace, work):
    from gpuyard.cli.commands.server import _in_database

    return _in_database(args.db, work)


def list_keys(args: argparse.Namespace) -> int:
    from gpuyard.errors import GpuyardError
    from gpuyard.services.access.operators import list_keys as keys_of

    try:
        rows = _run(args, lambda s: keys_of(s, args.user))
    except GpuyardError as exc:
        return fail(exc.msg)
    if not rows:
        print(f"User {args.user} has no API keys." if args.user else "There are no API keys.")
        return 0
    print_table(rows, [
        ("id", "id"),
        ("user", "user"),
        ("created (UTC)", lambda r: when(r["created_at"])),
        ("revoked (UTC)", lambda r: when(r["revoked_at"])),
        ("account", lambda r: f"disabled {when(r['user_disabled_at'])}" if r["user_disabled_at"]
         else "enabled"),
    ])
    return 0


def create_key(args: argparse.Namespace) -> int:
    from gpuyard.errors import GpuyardError
    from gpuyard.services.access.operators import create_key as new_key

    try:
        key = _run(args, lambda s: new_key(s, args.name))
    except GpuyardError as exc:
        return fail(exc.msg)
    print(key)
    return 0


def revoke_key(args: argparse.Namespace) -> int:
    from gpuyard.errors import GpuyardError
    from gpuyard.services.access import operators as access

    if (args.key_id is None) == (args.user is None):
        return fail("name one key by its id (see 'gpuyard admin list-keys'), or every key of a "
                    "user with --user NAME")
    try:
        if args.user is not None:
            revoked = _run(args, lambda s: access.revoke_user_keys(s, args.user))
            if not revoked:
                print(f"User {args.user} has no API key left to revoke; nothing changed.")
            else:
                ids = ", ".join(map(str, revoked))
                print(f"Revoked {len(revoked)} API key(s) of user {args.user} (id {ids}); they are "
                      "refused from now on.")
            return 0
        row, changed = _run(args, lambda s: access.revoke_key(s, args.key_id))
    except GpuyardError as exc:
        return fail(exc.msg)
    if changed:
        print(f"Revoked API key {row['id']} of user {row['user']}; it is refused from now on.")
    else:
        print(f"API key {row['id']} of user {row['user']} was already revoked on "
              f"{when(row['revoked_at'])} UTC; nothing changed.")
    return 0


def disable_user(args: argparse.Namespace) -> int:
    from gpuyard.errors import GpuyardError
    from gpuyard.services.access.operators import disable_user as disable

    try:
        change = _run(args, lambda s: disable(s, args.name, stop=args.stop))
    except GpuyardError as exc:
        return fail(exc.msg)
    if change.changed:
        print(f"Disabled user {change.username}: its API keys and console sessions are refused "
              "from now on ('gpuyard admin enable-user' undoes it).")
    else:
        print(f"User {change.username} was already disabled on {when(change.since)} UTC.")
    if args.stop:
        print(f"Stopping its running instance(s) {', '.join(map(str, change.stopped))} (disks kept)."
              if change.stopped else "It has no running instances.")
    return 0


def enable_user(args: argparse.Namespace) -> int:
    from gpuyard.errors import GpuyardError
    from gpuyard.services.access.operators import enable_user as enable

    try:
        change = _run(args, lambda s: enable(s, args.name))
    except GpuyardError as exc:
        return fail(exc.msg)
    if change.changed:
        print(f"Enabled user {change.username}: its API keys that were not revoked work again.")
    else:
        print(f"User {change.username} is not disabled; nothing changed.")
    return 0
