"""SSH key endpoints (VAST-WIRE §13.1, §13.2): account keys, and keys attached to one instance.

After a change, instances that run their own SSH server get their ``authorized_keys`` rewritten
(docs/access.md "Direct SSH") before the answer goes out; the gateway needs nothing, it asks
for the keys on every login."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool

from gpuyard.api.deps import AUTHENTICATED, call, call_read
from gpuyard.api.edge import JSONAnswer
from gpuyard.services.access import ssh_keys as svc
from gpuyard.wire.common import Done, EmptyBody
from gpuyard.wire.ssh_keys import AttachedKeyDone, SshKeyCreate, SshKeyDone, SshKeyList, SshKeyUpdate
from gpuyard.wire.types import PathId

router = APIRouter(tags=["ssh keys"], **AUTHENTICATED)

KeyId = Annotated[PathId("ssh key id"), Path(description="an ssh key id from show ssh-keys")]
InstanceId = Annotated[PathId("instance id"), Path(description="an instance id")]
AttachedId = Annotated[PathId("attached key id"),
                       Path(description="the id attach ssh answered with")]


async def _sync(request: Request, instance_id: int | None = None) -> None:
    """The caller's running direct-SSH containers (``instance_id``: that one) get the new keys."""
    reconciler = request.app.state.reconciler
    for iid in await call_read(request, svc.direct_instances, instance_id):
        await run_in_threadpool(reconciler.reconcile, iid, True)


@router.get("/api/v0/ssh", response_model=SshKeyList)
async def list_ssh_keys(request: Request):
    """Your account's SSH public keys, oldest first."""
    return JSONAnswer({"success": True, "ssh_keys": await call(request, svc.list_keys)})


@router.post("/api/v0/ssh", response_model=SshKeyDone)
async def create_ssh_key(request: Request, body: SshKeyCreate | None = None):
    """Add a public key ``{"ssh_key": "ssh-ed25519 AAAA… me@laptop"}`` to your account: it logs into
    all your instances (409 if it is there already)."""
    body = body or SshKeyCreate.model_validate({})
    answer = await call(request, svc.create_key, body.ssh_key)
    await _sync(request)
    return JSONAnswer(answer)


@router.put("/api/v0/ssh/{key_id:int}", response_model=SshKeyDone)
async def update_ssh_key(request: Request, key_id: KeyId, body: SshKeyUpdate | None = None):
    """Replace the text of one of your keys ``{"id": ID, "ssh_key": TEXT}``."""
    body = body or SshKeyUpdate.model_validate({})
    body.check_id(key_id)
    answer = await call(request, svc.update_key, key_id, body.ssh_key)
    await _sync(request)
    return JSONAnswer(answer)


@router.delete("/api/v0/ssh/{key_id:int}", response_model=Done)
async def delete_ssh_key(request: Request, key_id: KeyId, body: EmptyBody | None = None):
    """Remove one of your keys: it no longer logs into your instances."""
    answer = await call(request, svc.delete_key, key_id)
    await _sync(request)
    return JSONAnswer(answer)


@router.post("/api/v0/instances/{instance_id:int}/ssh", response_model=AttachedKeyDone)
async def attach_ssh_key(request: Request, instance_id: InstanceId, body: SshKeyCreate | None = None):
    """Let a public key ``{"ssh_key": TEXT}`` log into this instance only (the answer's key id is
    what detach takes)."""
    body = body or SshKeyCreate.model_validate({})
    answer = await call(request, svc.attach_key, instance_id, body.ssh_key)
    await _sync(request, instance_id)
    return JSONAnswer(answer)


@router.delete("/api/v0/instances/{instance_id:int}/ssh/{key_id}", response_model=Done)
async def detach_ssh_key(request: Request, instance_id: InstanceId, key_id: AttachedId,
                         body: EmptyBody | None = None):
    """Detach a key attached to this instance: it no longer logs in (from the next connection)."""
    answer = await call(request, svc.detach_key, instance_id, key_id)
    await _sync(request, instance_id)
    return JSONAnswer(answer)
