"""Commands run in an instance (VAST-WIRE §16): ``execute`` (ls, rm, du with no shell), and the
official ``copy``, which gpuyard answers with how to copy instead (docs/instances.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from gpuyard.api.deps import AUTHENTICATED, call, caller
from gpuyard.api.edge import JSONAnswer
from gpuyard.api.routes.instances import InstanceId
from gpuyard.errors import InvalidInput
from gpuyard.services.instance_access import execute
from gpuyard.services.rentals import instance_logs as logs
from gpuyard.wire.commands import CopyRequest, ExecuteReady, ExecuteRequest

router = APIRouter(tags=["instances"], **AUTHENTICATED)

COPY_NOT_SUPPORTED = (
    "gpuyard does not run the rsync daemon that 'vastai copy' needs; copy files over SSH instead: "
    "'vastai scp-url ID' prints the address for scp and sftp (e.g. scp -P PORT file "
    "root@HOST:/workspace/), or use 'gpuyard copy SRC ID:/path'"
)


@router.put("/api/v0/instances/command/{instance_id:int}", response_model=ExecuteReady)
async def execute_command(request: Request, instance_id: InstanceId,
                          body: ExecuteRequest | None = None):
    """Run ``ls``, ``rm`` or ``du`` (with arguments, no shell) in the instance; its output is at
    ``result_url`` (no key needed, for 10 minutes)."""
    if body is None:
        raise InvalidInput('send the command as {"command": "ls -l /workspace"}', "command_not_allowed")
    argv = execute.parse_command(body.command)
    where = await call(request, execute.target, instance_id)
    result = await run_in_threadpool(execute.run, request.app.state.reconciler, where, argv)
    token = await call(request, logs.store_logs, where.instance_id, execute.output_text(result))
    url = str(request.base_url).rstrip("/") + f"/api/v0/instances/logs/{token}"
    return JSONAnswer({"success": True, "result_url": url, "exit_code": result.exit_code,
                       "msg": execute.summary(argv, result)})


async def _copy(request: Request) -> JSONAnswer:
    await caller(request)  # a wrong key is a 401 first
    raise InvalidInput(COPY_NOT_SUPPORTED, "not_supported")


@router.put("/api/v0/commands/copy_direct", response_model=None)
async def copy_direct(request: Request, body: CopyRequest | None = None):
    """Not supported: copy with scp/sftp to the address of ``scp-url`` (or ``gpuyard copy``)."""
    return await _copy(request)


@router.put("/api/v0/commands/rsync", response_model=None)
async def copy_rsync(request: Request, body: CopyRequest | None = None):
    """Not supported: copy with scp/sftp to the address of ``scp-url`` (or ``gpuyard copy``)."""
    return await _copy(request)
