"""Printing: tables by default (rich), JSON with --raw, errors on stderr with exit status 1."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=1, sort_keys=True))


NO_WRAP = {"id", "hash_id", "version", "created_at", "updated_at"}


def when(epoch: float | None) -> str | None:
    """Epoch seconds as a UTC date and time, for tables."""
    if epoch is None:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")


def print_table(rows: Sequence[dict], columns: Sequence[tuple[str, str | Callable]]) -> None:
    from rich.table import Table

    table = Table(show_lines=False, header_style="bold")
    for title, _ in columns:
        table.add_column(title, overflow="fold", no_wrap=title in NO_WRAP)
    for row in rows:
        cells = []
        for _, getter in columns:
            value = getter(row) if callable(getter) else row.get(getter)
            cells.append("-" if value is None else str(value))
        table.add_row(*cells)
    console().print(table)


def console():
    """A rich console for stdout that never wraps when writing to a pipe or a file."""
    from rich.console import Console

    out = Console(soft_wrap=False)
    return out if out.is_terminal else Console(soft_wrap=False, width=250)


def print_fields(obj: dict, fields: Sequence[tuple[str, str | Callable]]) -> None:
    """One object as a two-column table: field, value (``None`` shown as ``-``)."""
    from rich.table import Table

    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for title, getter in fields:
        value = getter(obj) if callable(getter) else obj.get(getter)
        table.add_row(title, "-" if value is None else str(value))
    console().print(table)


def number(value: object, fmt: str = "{:.2f}", scale: float = 1.0) -> str | None:
    """A numeric cell: formatted, or None (shown as -) when the value is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None if value is None else str(value)
    return fmt.format(value * scale)


def fail(msg: str) -> int:
    print(f"Error: {msg}", file=sys.stderr)
    return 1
