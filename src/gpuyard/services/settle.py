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
