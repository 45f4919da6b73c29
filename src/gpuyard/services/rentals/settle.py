"""Around a change: before a rental, the machine's verdict on the image; after any change, the
runtime brought in line for the instances it touched.

Shared by the API and the console, so both act on an :class:`~gpuyard.services.rentals.instances.Outcome`
the same way (preempted bids stop now, not at the next sweep).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool


async def settle(reconciler: Any, outcome: Any) -> None:
    """Reconcile every instance in ``outcome.instance_ids`` (in id order), then wake the
    background sweep."""
    for instance_id in sorted(outcome.instance_ids):
        await run_in_threadpool(reconciler.reconcile, instance_id)
    reconciler.wake()


async def check_image(sessions: Any, reconciler: Any, ask_id: int, merged: dict[str, Any],
                      default_runtime: str) -> None:
    """Before a rental's write transaction (no transaction open while the engine answers): the
    offer's machine must be able to get the launch's image. The engine's verdict decides, not a
    time window (docs/runtime.md, "Errors"): an image the engine has, or whose pull has layers
    coming, rents; an image that cannot be pulled is 400 ``image_unavailable`` and an engine that
    does not answer 503 ``engine_unavailable``, with nothing rented. Runtimes without images
    (simulated), unknown offers and offline machines (the rental says so) pass."""
    from gpuyard.errors import InvalidInput, Unavailable
    from gpuyard.runtimes.base import ImageUnavailable, RuntimeError_
    from gpuyard.services.identifiers import MAX_ID
    from gpuyard.store.db import transaction
    from gpuyard.store.models import Ask, Machine

    def target() -> tuple[str, str | None, int] | None:
        if not 1 <= ask_id <= MAX_ID:
            return None
        with transaction(sessions, write=False) as session:
            ask = session.get(Ask, ask_id)
            machine = session.get(Machine, ask.machine_id) if ask is not None else None
            if machine is None or not machine.engine_online:
                return None  # the rental refuses it (an offline machine: 409, not a wait)
            return machine.runtime or default_runtime, machine.docker_url, machine.id

    found = await run_in_threadpool(target)
    if found is None:
        return
    name, url, machine_id = found
    try:
        runtime = reconciler.runtime_for(name, url)
        prepare = getattr(runtime, "prepare_image", None)
        if prepare is None:
            return
        await run_in_threadpool(prepare, merged["image"], merged["tag"], merged.get("image_login"))
    except ImageUnavailable as exc:
        raise InvalidInput(f"the image cannot be used: {exc.msg}; nothing was rented. Check the "
                           "image name, tag and registry login", "image_unavailable") from None
    except RuntimeError_ as exc:
        raise Unavailable(
            f"machine {machine_id} cannot run instances right now ({exc.msg}; nothing was "
            "rented). Try another offer, or ask the operator to check the machine's engine",
            "engine_unavailable",
        ) from None


async def undo_if_failed_fast(sessions: Any, reconciler: Any, instance_id: int | None) -> None:
    """A launch the machine refused at once is undone, and the caller gets the reason as an
    error, instead of an instance that can never run. Called after :func:`settle`: by then the
    runtime's create has given its verdict (with the image on the engine, the docker runtime
    creates and starts the container before it returns; :func:`check_image` has ruled on the
    image before the rental), so one read of the row decides, no waiting. A pull still running
    is left to run; its outcome shows on the instance. (The instance was just made by the
    caller, so its row is read as is: no account lookup on the way of every launch.)"""
    from gpuyard.errors import Conflict, InvalidInput, Unavailable
    from gpuyard.services.rentals import instances
    from gpuyard.store.db import transaction
    from gpuyard.store.models import Instance, User

    if instance_id is None:
        return

    def read() -> dict[str, Any] | None:
        with transaction(sessions, write=False) as session:
            inst = session.get(Instance, instance_id)
            if inst is None or inst.destroyed_at is not None:
                return None
            return {"actual_status": inst.actual_status, "status_msg": inst.status_msg,
                    "machine_id": inst.machine_id, "owner_id": inst.owner_id}

    row = await run_in_threadpool(read)
    msg = (row or {}).get("status_msg") or ""
    if not (row and row["actual_status"] == "exited" and msg.startswith("error")):
        return

    def undo() -> Any:
        with transaction(sessions) as session:
            return instances.destroy(session, session.get(User, row["owner_id"]), [instance_id])

    await settle(reconciler, await run_in_threadpool(undo))
    reason = f"{msg[len('error: '):]}; nothing was rented"
    if "unreachable" in msg:
        raise Unavailable(
            f"machine {row['machine_id']} cannot run instances right now ({reason}). Try another "
            "offer, or ask the operator to check the machine's engine",
            "engine_unavailable",
        )
    if "pull" in msg or "image" in msg:
        raise InvalidInput(f"the image cannot be used: {reason}. Check the image name, tag and "
                           "registry login", "image_unavailable")
    raise Conflict(f"machine {row['machine_id']} refused the instance: {reason}. Try another offer",
                   "engine_refused")
