"""Around a change: before a rental, the machine's verdict on the image; after any change, the
runtime brought in line for the instances it touched.

Shared by the API and the console, so both act on an :class:`~gpuyard.services.rentals.instances.Outcome`
the same way (preempted bids stop now, not at the next sweep).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool


def settle_now(reconciler: Any, instance_ids: Any) -> None:
    """Reconcile every instance of ``instance_ids`` (in id order), on the calling thread; then
    wake the background sweep if one of them could not be done here (another process held its
    lease), else only the reconciler's listeners (a sweep per request would cost a query for
    nothing)."""
    acted = [reconciler.reconcile(instance_id) for instance_id in sorted(instance_ids)]
    if all(acted):
        reconciler.notify()
    else:
        reconciler.wake()


async def settle(reconciler: Any, outcome: Any) -> None:
    """:func:`settle_now` for every instance in ``outcome.instance_ids``, on a worker thread."""
    await run_in_threadpool(settle_now, reconciler, outcome.instance_ids)


async def settle_launch(sessions: Any, reconciler: Any, outcome: Any) -> None:
    """After a rental: :func:`settle` it, then :func:`failed_fast`, in one hop to a
    worker thread (a rental's answer waits for both); raises what the machine refused. A
    rental settled already (:func:`settle_here`) only raises its refusal."""
    if not outcome.settled:
        await run_in_threadpool(_settle_rental, sessions, reconciler, outcome)
    if outcome.refusal is not None:
        raise outcome.refusal


def _settle_rental(sessions: Any, reconciler: Any, outcome: Any) -> None:
    """:func:`settle_now` the rental, then :func:`failed_fast`, on the calling thread; the
    refusal (or None) kept on ``outcome``."""
    settle_now(reconciler, outcome.instance_ids)
    outcome.refusal = failed_fast(sessions, reconciler, outcome.instance_id, outcome.recorded)
    outcome.settled = True


def settle_here(reconciler: Any) -> Any:
    """What settles a rental on the worker thread that made it, right after its transaction
    (``then`` of api.deps.call): for runtimes that act in memory, where the reconcile is quick
    and a second hop to a worker thread would cost more than it."""
    def then(outcome: Any) -> None:
        if getattr(outcome, "instance_id", None) is None:
            return  # deferred to the image check (instances.Deferred), or a dry run
        _settle_rental(reconciler.sessions, reconciler, outcome)

    return then


def image_target(session: Any, ask_id: int, default_runtime: str) -> tuple[str, str | None, int] | None:
    """What :func:`check_image` asks for offer ``ask_id``: (runtime name, engine URL, machine
    id); None for unknown offers and offline machines (the rental says what is wrong). Read in
    the transaction that merges the launch, so the check costs no transaction of its own (an id
    no row can have is None from the store's session)."""
    from gpuyard.store.models import Ask, Machine

    ask = session.get(Ask, ask_id)
    machine = session.get(Machine, ask.machine_id) if ask is not None else None
    if machine is None or not machine.engine_online:
        return None  # the rental refuses it (an offline machine: 409, not a wait)
    return machine.runtime or default_runtime, machine.docker_url, machine.id


async def check_image(reconciler: Any, target: tuple[str, str | None, int] | None,
                      merged: dict[str, Any]) -> None:
    """Before a rental's write transaction (no transaction open while the engine answers): the
    offer's machine (``target``, from :func:`image_target`) must be able to get the launch's
    image. The engine's verdict decides, not a time window (docs/runtime.md, "Errors"): an image
    the engine has, or whose pull has layers coming, rents; an image that cannot be pulled is
    400 ``image_unavailable`` and an engine that does not answer 503 ``engine_unavailable``,
    with nothing rented. Runtimes without images (simulated), unknown offers and offline
    machines (the rental says so) pass."""
    from gpuyard.errors import InvalidInput, Unavailable
    from gpuyard.runtimes.base import ImageUnavailable, RuntimeError_

    if target is None:
        return
    name, url, machine_id = target
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


async def rent_offer(run: Any, reconciler: Any, body: Any, ask_id: int, runtime: str) -> Any:
    """Rent offer ``ask_id`` with the launch request ``body``: the Outcome (settle it next, with
    :func:`settle_launch`). ``run(fn, *args, write=…, then=…, **kwargs)`` runs
    ``fn(session, user, …)`` for the caller in one transaction, then ``then(result)`` on the
    same thread (api.deps.call, web.deps.run).

    When the offer's machine rules on no image (simulated), the merge, the rental and the new
    instance's first reconcile (Reconciler.act_in) are one write transaction, and what is left
    to settle (bids it preempted) is settled on the same worker thread (:func:`settle_here`).
    Otherwise that transaction only merges the launch (instances.Deferred); the engine rules on
    the image with no transaction open (:func:`check_image`), and the rental is a write
    transaction of its own. A dry run checks no image."""
    from gpuyard.services.rentals import instances

    first = await run(instances.rent_at_once, ask_id, body, runtime, reconciler.checks_images,
                      reconciler.act_in, write=True, then=settle_here(reconciler))
    if not isinstance(first, instances.Deferred):
        return first
    await check_image(reconciler, first.target, first.merged)  # before anything is rented
    return await run(instances.create_instance, ask_id, body, first.merged, runtime=runtime,
                     write=True)


def failed_fast(sessions: Any, reconciler: Any, instance_id: int | None,
                seen: tuple[str, str | None] | None = None) -> Exception | None:
    """The error to answer when the machine refused the launch of ``instance_id`` at once (the
    instance is then destroyed), else None; on the calling thread. Called after the launch was
    settled: by then the runtime's create has given its verdict (with the image on the engine,
    the docker runtime creates and starts the container before it returns; :func:`check_image`
    has ruled on the image before the rental), so one read of the row decides, no waiting. A
    pull still running is left to run; its outcome shows on the instance. (The instance was
    just made by the caller, so its row is read as is: no account lookup on the way of every
    launch.) The row is read only when neither ``seen`` (what the rental's own transaction
    wrote: Reconciler.act_in) nor the reconcile says what was written (another process held the
    instance's lease)."""
    from gpuyard.errors import Conflict, InvalidInput, Unavailable
    from gpuyard.services.rentals import instances
    from gpuyard.store.db import transaction
    from gpuyard.store.models import Instance, User

    if instance_id is None:
        return None
    if seen is None:  # what the reconcile just wrote, if it was this one
        seen = reconciler.recorded(instance_id)
    if seen is None:
        with transaction(sessions, write=False) as session:
            inst = session.get(Instance, instance_id)
            if inst is None or inst.destroyed_at is not None:
                return None
            seen = (inst.actual_status, inst.status_msg)
    status, msg = seen[0], seen[1] or ""
    if not (status == "exited" and msg.startswith("error")):
        return None
    with transaction(sessions) as session:
        inst = session.get(Instance, instance_id)
        if inst is None or inst.destroyed_at is not None:
            return None
        machine_id = inst.machine_id
        undone = instances.destroy(session, session.get(User, inst.owner_id), [instance_id])
    settle_now(reconciler, undone.instance_ids)
    reason = f"{msg[len('error: '):]}; nothing was rented"
    if "unreachable" in msg:
        return Unavailable(
            f"machine {machine_id} cannot run instances right now ({reason}). Try another "
            "offer, or ask the operator to check the machine's engine",
            "engine_unavailable",
        )
    if "pull" in msg or "image" in msg:
        return InvalidInput(f"the image cannot be used: {reason}. Check the image name, tag and "
                            "registry login", "image_unavailable")
    return Conflict(f"machine {machine_id} refused the instance: {reason}. Try another offer",
                    "engine_refused")
