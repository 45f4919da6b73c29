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
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=False)
    if not console.is_terminal:
        console = Console(soft_wrap=False, width=250)  # pipes and files: never wrap cells
    table = Table(show_lines=False, header_style="bold")
    for title, _ in columns:
        table.add_column(title, overflow="fold", no_wrap=title in NO_WRAP)
    for row in rows:
        cells = []
        for _, getter in columns:
            value = getter(row) if callable(getter) else row.get(getter)
            cells.append("-" if value is None else str(value))
        table.add_row(*cells)
    console.print(table)


def fail(msg: str) -> int:
    print(f"Error: {msg}", file=sys.stderr)
    return 1
