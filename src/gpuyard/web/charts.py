"""Stacked bar charts as SVG, drawn on the server: no chart library, no script.

:func:`stacked_bars` computes the geometry (bars, axis ticks, day labels, legend) as plain data;
the ``chart`` macro in templates/usage.html writes it out as SVG, so every name that reaches
the picture (template names, labels) goes through Jinja's autoescaping.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

DAY = 86400.0
#: Distinct, colour-blind friendly colours (Okabe-Ito, then a few more); "other" is grey.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#332288",
           "#117733", "#882255")
OTHER = "#9a9a9a"
MAX_SERIES = len(PALETTE)
WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 26, 36


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str
    series: str


@dataclass(frozen=True)
class Tick:
    y: float
    text: str


@dataclass(frozen=True)
class DayLabel:
    x: float
    text: str


@dataclass
class Chart:
    """Everything the SVG needs."""

    id: str
    title: str
    unit: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    days: list[DayLabel] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    summary: str = ""

    @property
    def empty(self) -> bool:
        return not self.bars


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at least ``value`` (1 for nothing)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-9):
            return step * power
    return 10 * power  # pragma: no cover


def day_text(day: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day))


def series_order(values: dict[str, float]) -> list[str]:
    """Series by total, largest first; beyond the palette the rest is one "other" series."""
    ranked = sorted(values, key=lambda k: (-values[k], k))
    return ranked


def stacked_bars(chart_id: str, title: str, unit: str, days: list[float],
                 values: dict[tuple[float, str], float], fmt: Callable[[float], str]) -> Chart:
    """Bars per day (``days``, UTC midnights, oldest first) stacked by series: ``values`` maps
    (day, series) to a figure. The biggest series get colours, the rest is "other"."""
    totals: dict[str, float] = {}
    for (_day, name), value in values.items():
        totals[name] = totals.get(name, 0.0) + value
    ranked = [name for name in series_order(totals) if totals[name] > 0]
    shown = ranked if len(ranked) <= MAX_SERIES else ranked[:MAX_SERIES - 1]
    colour = {name: PALETTE[i] for i, name in enumerate(shown)}
    merged: dict[tuple[float, str], float] = {}
    for (day, name), value in values.items():
        key = (day, name if name in colour else "other")
        merged[key] = merged.get(key, 0.0) + value
    if len(shown) < len(ranked):
        colour["other"] = OTHER
    order = list(colour)

    chart = Chart(id=chart_id, title=title, unit=unit)
    per_day = {day: sum(merged.get((day, name), 0.0) for name in order) for day in days}
    top = nice_ceiling(max(per_day.values(), default=0.0))
    plot_h = chart.bottom - chart.top
    plot_w = chart.right - chart.left
    slot = plot_w / max(len(days), 1)
    width = max(slot * 0.72, 1.0)
    for i in range(5):
        value = top * i / 4
        chart.ticks.append(Tick(chart.bottom - plot_h * i / 4, f"{value:g}"))
    every = max(1, math.ceil(len(days) / 10))
    for index, day in enumerate(days):
        x = chart.left + slot * index + (slot - width) / 2
        if index % every == 0:
            chart.days.append(DayLabel(x + width / 2, time.strftime("%m-%d", time.gmtime(day))))
        base = chart.bottom
        for name in order:
            value = merged.get((day, name), 0.0)
            if value <= 0:
                continue
            height = plot_h * value / top
            base -= height
            chart.bars.append(Bar(round(x, 2), round(base, 2), round(width, 2), round(height, 2),
                                  colour[name], f"{day_text(day)} · {name}: {fmt(value)} {unit}", name))
    chart.legend = [(name, colour[name]) for name in order]
    total = sum(per_day.values())
    chart.summary = (f"{title}: {fmt(total)} {unit} over {len(days)} days"
                     + (f", most on {day_text(max(per_day, key=per_day.__getitem__))}" if total > 0 else ""))
    return chart
