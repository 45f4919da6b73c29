"""After a change: bring the runtime in line for the instances it touched.

Shared by the API and the console, so both act on an :class:`~gpuyard.services.instances.Outcome`
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


FAST_FAILURE_SECONDS = 3.0


def _still_preparing(row: dict[str, Any]) -> bool:
    msg = row.get("status_msg") or ""
    return row["actual_status"] == "loading" and "%" not in msg and not msg.startswith("running")


async def undo_if_failed_fast(sessions: Any, reconciler: Any, user_id: int, instance_id: int | None) -> None:
    """A launch that fails at once (engine unreachable, image that cannot be pulled, host port
    taken) is undone, and the caller gets the reason as an error, instead of an instance that
    can never run. Waits at most FAST_FAILURE_SECONDS, and only while the runtime is still
    preparing (a pull making progress is left to run; its failure shows in status_msg)."""
    import asyncio
    import time

    from gpuyard.errors import Conflict, InvalidInput, Unavailable
    from gpuyard.services import instances
    from gpuyard.services.instance_rows import get_instance
    from gpuyard.store.db import transaction
    from gpuyard.store.models import User

    if instance_id is None:
        return

    def read() -> dict[str, Any] | None:
        with transaction(sessions, write=False) as session:
            return get_instance(session, session.get(User, user_id), instance_id)

    def undo() -> Any:
        with transaction(sessions) as session:
            return instances.destroy(session, session.get(User, user_id), [instance_id])

    deadline = time.monotonic() + FAST_FAILURE_SECONDS
    row = await run_in_threadpool(read)
    while row and row["runtime"] != "simulated" and _still_preparing(row) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        row = await run_in_threadpool(read)
    msg = (row or {}).get("status_msg") or ""
    if not (row and row["actual_status"] == "exited" and msg.startswith("error")):
        return
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
