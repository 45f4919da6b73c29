"""The host side of the wire (VAST-WIRE §18): a machine owner's listings and maintenance windows,
and the machine rows ``show machines`` reads (§19)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, Field, WithJsonSchema

from gpuyard.errors import InvalidInput
from gpuyard.query.validate import show
from gpuyard.wire.base import WireModel
from gpuyard.wire.types import MAX_WIRE_ID, Id, Text, _validator, to_number

MAX_PRICE = 10_000.0  # $ per unit: anything above is a typo
MAX_HOURS = 24 * 366  # a maintenance window or listing duration
#: Epoch seconds accepted for dates: 2000-01-01 … 2100-01-01.
MIN_DATE, MAX_DATE = 946684800.0, 4102444800.0
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400,
         "month": 30 * 86400}
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]+?)s?\s*", re.IGNORECASE)


def _bounded(what: str, low: float, high: float, *, above_low: bool = False):
    def check(value: Any, name: str) -> Any:
        if value is None:
            return None
        number = to_number(value, name, what)
        if number < low or (above_low and number == low) or number > high:
            side = "more than" if above_low else "at least"
            raise InvalidInput(f"{name} must be {what} {side} {low:g} and at most {high:g}, "
                               f"not {show(value)}")
        return number

    return check


def Price(what: str) -> Any:  # noqa: N802
    """A price in $ (≥ 0, bounded), as a JSON number or numeric string; null: unchanged."""
    return Annotated[float | str | None, _validator(_bounded(what, 0.0, MAX_PRICE)),
                     WithJsonSchema({"anyOf": [
                         {"type": "number", "minimum": 0, "maximum": MAX_PRICE},
                         {"type": "string", "pattern": r"^\s*[0-9.eE+-]+\s*$"}, {"type": "null"}],
                         "description": what})]


def _whole(what: str, low: int, high: int):
    def check(value: Any, name: str) -> Any:
        if value is None:
            return None
        number = to_number(value, name, what)
        if not number.is_integer() or not low <= number <= high:
            raise InvalidInput(f"{name} must be {what} from {low} to {high}, not {show(value)}")
        return int(number)

    return check


def _date(value: Any, name: str) -> Any:
    if value is None:
        return None
    number = to_number(value, name, "a date in epoch seconds (e.g. 1798675200)")
    if not MIN_DATE <= number <= MAX_DATE:
        raise InvalidInput(f"{name} must be a date in epoch seconds between 2000 and 2100 "
                           f"(e.g. 1798675200), not {show(value)}")
    return number


Date = Annotated[float | str | None, _validator(_date),
                 WithJsonSchema({"anyOf": [{"type": "number", "minimum": MIN_DATE, "maximum": MAX_DATE},
                                           {"type": "string", "pattern": r"^\s*[0-9.eE+-]+\s*$"},
                                           {"type": "null"}]})]


def duration_seconds(text: str) -> float:
    """``"2 weeks"``, ``"3 days"``, ``"12h"``… as seconds (InvalidInput for anything else)."""
    short = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month"}
    match = _DURATION.fullmatch(text)
    unit = None
    if match:
        word = match.group(2).lower()
        unit = short.get(word, word if word in UNITS else None)
    if not match or unit is None:
        raise InvalidInput(f"duration {text!r} is not a duration: write a number and a unit, e.g. "
                           "'2 weeks', '30 days' or '12 hours' (units: " + ", ".join(UNITS) + ")")
    seconds = float(match.group(1)) * UNITS[unit]
    if not 0 < seconds <= MAX_HOURS * 3600:
        raise InvalidInput(f"duration {text!r} must be more than 0 and at most a year")
    return seconds


class MachineListing(WireModel):
    """``PUT /api/v0/machines/create_asks/`` (``list machine``): the official client always sends
    all twelve keys, null for what was not given."""

    what = "list machine"
    machine: Id = Field(description="the machine id (from show machines)")
    price_gpu: Price("the on-demand price in $/GPU/hour") = None
    price_disk: Price("the storage price in $/GB/month") = None
    price_inetu: Price("the upload price in $/GB") = None
    price_inetd: Price("the download price in $/GB") = None
    price_min_bid: Price("the lowest bid accepted, in $/GPU/hour") = None
    min_chunk: Annotated[int | str | None, _validator(_whole("a whole number of GPUs", 1, 64)),
                         WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1, "maximum": 64},
                                                   {"type": "null"}]})] = None
    end_date: Date = None
    credit_discount_max: Price("not supported by gpuyard (send null)") = None
    duration: Text(100) | None = None
    vol_size: Price("not supported by gpuyard (send null)") = None
    vol_price: Price("not supported by gpuyard (send null)") = None

    def model_post_init(self, _context: Any) -> None:
        unsupported = {"credit_discount_max": "-r (a discount for prepaid credit): gpuyard has no "
                                              "prepaid discounts",
                       "vol_size": "-v (volume offers of their own): a machine offers its free disk "
                                   "as volumes at its storage price (-s)",
                       "vol_price": "-z (a separate volume price): volumes cost the storage "
                                    "price (-s)"}
        for key, why in unsupported.items():
            if getattr(self, key) is not None:
                raise InvalidInput(f"{key} is not supported: {why}. Leave it out", "unsupported")
        if self.duration is not None:
            duration_seconds(self.duration)  # checked at the edge


class MaintenanceWindow(WireModel):
    """``PUT /api/v0/machines/{id}/dnotify/`` (``schedule maint``)."""

    what = "schedule maint"
    client_id: Text(20) | None = Field(None, description='"me" (ignored)')
    sdate: Date = Field(None, description="the window's start (epoch seconds)")
    duration: Annotated[float | str | None, _validator(_bounded("a number of hours", 0.0, MAX_HOURS,
                                                                above_low=True)),
                        WithJsonSchema({"anyOf": [
                            {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_HOURS},
                            {"type": "string", "pattern": r"^\s*[0-9.eE+-]+\s*$"}]})] = None
    maintenance_category: Text(100) | None = Field(None, description='e.g. "power" (default '
                                                                     '"not provided")')

    def model_post_init(self, _context: Any) -> None:
        if self.sdate is None:
            raise InvalidInput("sdate (the window's start, epoch seconds) is required", "missing")
        if self.duration is None:
            raise InvalidInput("duration (the window's length in hours) is required", "missing")


class MaintenanceCancel(WireModel):
    """``PUT /api/v0/machines/{id}/cancel_maint/``."""

    what = "cancel maint"
    client_id: Text(20) | None = Field(None, description='"me" (ignored)')
    machine_id: Id | None = Field(None, description="the machine id (must match the path)")


@dataclass(frozen=True)
class MaintenanceQuery:
    """``GET /api/v0/machines/maintenances?machine_ids=[42, 43]`` (none: all your machines)."""

    machine_ids: tuple[int, ...] | None

    @classmethod
    def parse(cls, text: str | None) -> MaintenanceQuery:
        if text is None or not text.strip():
            return cls(None)
        import orjson

        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = [part.strip() for part in text.strip().strip("[]").split(",")]
        if isinstance(value, int | str):
            value = [value]
        if not isinstance(value, list) or len(value) > 1000:
            raise InvalidInput("machine_ids must be a list of machine ids such as [42, 43]")
        ids = []
        for item in value:
            number = None
            if isinstance(item, int) and not isinstance(item, bool):
                number = item
            elif isinstance(item, str) and item.isdigit() and len(item) < 20:
                number = int(item)
            if number is None or not 0 < number <= MAX_WIRE_ID:
                raise InvalidInput(f"machine_ids holds {show(item)}, which is not a machine id; "
                                   "write machine_ids=[42, 43]")
            ids.append(number)
        return cls(tuple(ids))


# -- answers -------------------------------------------------------------------------------------
class Rental(BaseModel):
    instance_id: int
    renter: str = Field(description="the renter's username")
    gpus: list[int] = Field(description="the GPU indices it holds")
    is_bid: bool
    status: str
    dph: float = Field(description="$/hour it pays for its GPUs (the price it was rented at)")


class Maintenance(BaseModel):
    machine_id: int
    start_time: float
    end_time: float
    duration_hours: float
    maintenance_category: str


class MachineRow(BaseModel):
    """What ``show machines`` prints, and what the console's Machines page shows."""

    id: int
    hostname: str
    num_gpus: int
    gpu_name: str
    gpu_ram: float = Field(description="MB per GPU")
    cpu_cores: int
    cpu_ram: float = Field(description="MB")
    cpu_name: str | None
    disk_space: float = Field(description="GB")
    disk_used: float = Field(description="GB taken by instances and volumes")
    driver_version: str | None
    os_version: str | None
    gpu_runtime: str | None
    runtime: str | None
    docker_url: str | None
    reliability2: float
    verification: str
    public_ipaddr: str | None
    geolocation: str | None
    num_reports: int
    listed: bool
    listed_gpu_cost: float = Field(description="$/GPU/hour")
    min_bid_price: float = Field(description="$/GPU/hour")
    listed_storage_cost: float = Field(description="$/GB/month")
    credit_discount_max: float
    listed_inet_up_cost: float = Field(description="$/GB")
    listed_inet_down_cost: float = Field(description="$/GB")
    min_chunk: int
    end_date: float | None
    offers: int = Field(description="GPU offers it has now")
    gpu_occupancy: str = Field(description="per GPU: D rented on demand, B by a bid, - free")
    rentals: list[Rental]
    maintenances: list[Maintenance]
    owner: str | None


class MachineList(BaseModel):
    machines: list[MachineRow]


class Listed(BaseModel):
    success: bool
    extended: int = Field(description="running rentals whose end date moved later")
    msg: str


class MaintenanceDone(BaseModel):
    success: bool
    msg: str
