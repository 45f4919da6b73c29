"""The host side (VAST-WIRE §18): a machine owner's machines, listings and maintenance windows.

Others' machines answer 404, as machines that do not exist. A change of allocation (a window
that has already begun stops bids; a cancelled one lets them resume) is brought to the runtime
before the answer goes out.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from gpuyard.api.deps import AUTHENTICATED, call
from gpuyard.api.edge import JSONAnswer
from gpuyard.services.machines import hosting, maintenance
from gpuyard.services.rentals.settle import settle
from gpuyard.wire.base import parse
from gpuyard.wire.common import Done, EmptyBody
from gpuyard.wire.machines import (
    Listed,
    MachineList,
    MachineListing,
    MachineRow,
    Maintenance,
    MaintenanceCancel,
    MaintenanceDone,
    MaintenanceQuery,
    MaintenanceWindow,
)
from gpuyard.wire.types import PathId

router = APIRouter(tags=["machines"], **AUTHENTICATED)

MachineId = Annotated[PathId("machine id"), Path(description="a machine id from show machines")]
Owner = Annotated[Literal["me"] | None, Query(description='"me" (only your machines are shown)')]


@router.get("/api/v0/machines", response_model=MachineList)
async def show_machines(request: Request, owner: Owner = None):
    """Your machines: specs, prices, listing, who rents which GPU, maintenance windows."""
    return JSONAnswer({"machines": await call(request, hosting.list_machines)})


@router.get("/api/v0/machines/maintenances", response_model=list[Maintenance])
async def show_maintenances(
    request: Request,
    owner: Owner = None,
    machine_ids: Annotated[str | None, Query(max_length=8000, description="machine ids as JSON, "
                                                                           "e.g. [42, 43] (none: all)")]
    = None,
):
    """The maintenance windows of your machines that have not ended."""
    query = MaintenanceQuery.parse(machine_ids)
    return JSONAnswer(await call(request, maintenance.list_windows, query))


@router.get("/api/v0/machines/{machine_id:int}", response_model=list[MachineRow])
async def show_machine(request: Request, machine_id: MachineId, owner: Owner = None):
    """One of your machines, as a list of one row (what the official client reads)."""
    return JSONAnswer(await call(request, hosting.show_machine, int(machine_id)))


@router.put("/api/v0/machines/create_asks", response_model=Listed)
async def list_machine(request: Request, body: MachineListing | None = None):
    """List a machine: prices (null keeps one), minimum GPUs per offer, end date (``end_date``,
    or ``duration`` such as "2 weeks"; neither keeps a future one, else 90 days). Offers change
    at once; running rentals keep the price they were rented at."""
    listing = body or parse(MachineListing, {})
    return JSONAnswer(await call(request, hosting.list_machine, listing))


@router.delete("/api/v0/machines/{machine_id:int}/asks", response_model=Done)
async def unlist_machine(request: Request, machine_id: MachineId, body: EmptyBody | None = None):
    """Withdraw every offer of a machine; its instances keep running."""
    return JSONAnswer(await call(request, hosting.unlist_machine, int(machine_id)))


@router.put("/api/v0/machines/{machine_id:int}/dnotify", response_model=MaintenanceDone)
async def schedule_maint(request: Request, machine_id: MachineId, body: MaintenanceWindow | None = None):
    """Schedule a maintenance window (``sdate`` epoch seconds, ``duration`` hours): offers end
    before it, renters are warned in their instances' status_msg, bids stop while it lasts."""
    window = body or parse(MaintenanceWindow, {})
    msg, touched = await call(request, maintenance.schedule, int(machine_id), window)
    await settle(request.app.state.reconciler, SimpleNamespace(instance_ids=touched))
    return JSONAnswer({"success": True, "msg": msg})


@router.put("/api/v0/machines/{machine_id:int}/cancel_maint", response_model=MaintenanceDone)
async def cancel_maint(request: Request, machine_id: MachineId, body: MaintenanceCancel | None = None):
    """Cancel a machine's maintenance windows that have not ended (stopped bids resume)."""
    if body is not None and body.machine_id is not None and int(body.machine_id) != int(machine_id):
        from gpuyard.errors import InvalidInput

        raise InvalidInput(f"machine_id {body.machine_id} in the body is not the machine of the path "
                           f"({machine_id}); leave it out or make them equal")
    msg, touched = await call(request, maintenance.cancel, int(machine_id))
    await settle(request.app.state.reconciler, SimpleNamespace(instance_ids=touched))
    return JSONAnswer({"success": True, "msg": msg})
