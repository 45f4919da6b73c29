"""What every client command shares: building the SDK from the flags, and turning errors into
a message on stderr and exit status 1."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable

from gpuyard.cli.output import fail


def sdk_from(args: argparse.Namespace):
    from gpuyard.sdk.client import VastAI

    return VastAI(api_key=getattr(args, "api_key", None), server_url=getattr(args, "url", None))


def handles_errors(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    @functools.wraps(fn)
    def wrapper(args: argparse.Namespace) -> int:
        from gpuyard.errors import GpuyardError

        try:
            return fn(args)
        except GpuyardError as exc:
            return fail(exc.msg)

    return wrapper


def show_result(args: argparse.Namespace, result: dict, done: str) -> int:
    """A command's answer: the JSON with --raw, else the line ``done``."""
    from gpuyard.cli.output import print_json

    if getattr(args, "raw", False):
        print_json(result)
    else:
        print(done)
    return 0


def confirm(question: str) -> bool:
    """Ask on stdin; anything but y/yes (or no stdin at all) means no."""
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        print()
        return False
    return answer.strip().lower() in ("y", "yes")


def declined(args: argparse.Namespace, question: str) -> bool:
    """Whether the user turned ``question`` down (``-y`` answers yes for them); prints "Aborted."
    when they did, and the command then exits 1 having sent nothing."""
    if args.yes or confirm(question):
        return False
    print("Aborted.")
    return True
