"""Instance methods of :class:`gpuyard.VastAI` (VAST-WIRE §6), plus :meth:`wait_for_instance`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from gpuyard.sdk.errors import InstanceFailed, NotFound, WaitTimeout
from gpuyard.sdk.payloads import create_instance_body

if TYPE_CHECKING:  # pragma: no cover
    from gpuyard.sdk.http import Transport

#: Statuses an instance does not leave on its own while it is meant to run.
FAILED_STATUSES = frozenset({"exited", "failed", "error", "offline", "destroyed", "deleted"})
PAGE_SIZE = 25


def _strip(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def instance_row(row: dict) -> dict:
    """A row as the official SDK hands it out: strings trimmed, ``duration`` (seconds since
    ``start_date``) added and ``extra_env`` turned from ``[key, value]`` pairs into a dict."""
    row = {k: _strip(v) for k, v in row.items()}
    if isinstance(row.get("start_date"), int | float):
        row["duration"] = time.time() - row["start_date"]
    extra_env = row.get("extra_env")
    if isinstance(extra_env, list):
        row["extra_env"] = {pair[0]: pair[1] for pair in extra_env if len(pair) == 2}
    return row


class InstancesMixin:
    _http: Transport

    # -- create -----------------------------------------------------------------------------

    def create_instance(
        self,
        id: int | list[int],
        image: str | None = None,
        disk: float = 10,
        env: str | dict | None = None,
        price: float | None = None,
        label: str | None = None,
        extra: str | None = None,
        onstart_cmd: str | None = None,
        login: str | None = None,
        python_utf8: bool = False,
        lang_utf8: bool = False,
        jupyter_lab: bool = False,
        jupyter_dir: str | None = None,
        force: bool = False,
        cancel_unavail: bool = False,
        template_hash: str | None = None,
        user: str | None = None,
        runtype: str | None = None,
        args: list[str] | None = None,
        volume_info: dict | None = None,
        bid_price: float | None = None,
        ssh: bool = False,
        jupyter: bool = False,
        direct: bool = False,
        create_volume: int | None = None,
        link_volume: int | None = None,
        volume_size: float | None = None,
        mount_path: str | None = None,
        volume_label: str | None = None,
        *,
        onstart: str | None = None,
        entrypoint: str | None = None,
        dry_run: bool = False,
    ) -> dict:
        """Rent offer ``id`` and start an instance. Returns ``{"success", "new_contract", "msg"}``
        where ``new_contract`` is the new instance id.

        ``template_hash`` starts from a template: scalar arguments (``image``, ``disk``, ...)
        override it and ``env`` (a Docker-flag string such as ``"-e A=1 -p 8000:8000"``, or a
        ready dict) is merged into its env. ``price`` (or ``bid_price``) makes it an
        interruptible bid at that $/hour. ``onstart``/``entrypoint`` are accepted as spellings
        of ``onstart_cmd``. ``dry_run=True`` rents nothing and returns the configuration the
        server would launch, under ``launch``.
        """
        body = create_instance_body(
            image=image, disk=disk, env=env, price=price, bid_price=bid_price, label=label,
            extra=extra, onstart_cmd=onstart_cmd or onstart or entrypoint, login=login,
            python_utf8=python_utf8, lang_utf8=lang_utf8, jupyter_lab=jupyter_lab,
            jupyter_dir=jupyter_dir, force=force, cancel_unavail=cancel_unavail,
            template_hash=template_hash, user=user, runtype=runtype, ssh=ssh, jupyter=jupyter,
            direct=direct, args=args, volume_info=volume_info, create_volume=create_volume,
            link_volume=link_volume, volume_size=volume_size, mount_path=mount_path,
            volume_label=volume_label,
        )
        if dry_run:
            body["dry_run"] = True
        if isinstance(id, list | tuple):
            body["ids"] = [int(i) for i in id]
            return self._http.request("POST", "/api/v0/asks/bulk/", body=body)
        return self._http.request("PUT", f"/api/v0/asks/{int(id)}/", body=body)

    def create_instances(self, ids: list[int], *args: Any, **kwargs: Any) -> dict:
        """Rent several offers with one configuration: the arguments of :meth:`create_instance`
        after ``id``. Returns the server's answer for the whole batch."""
        return self.create_instance(list(ids), *args, **kwargs)  # type: ignore[arg-type]

    # -- read -------------------------------------------------------------------------------

    def show_instances(self) -> list[dict]:
        """Every instance you own, oldest first, as one flat list (pages are followed)."""
        params: dict[str, Any] = {
            "select_filters": {}, "order_by": [{"col": "id", "dir": "asc"}], "limit": PAGE_SIZE,
        }
        rows: list[dict] = []
        while True:
            page = self.show_instances_v1(params)
            rows.extend(instance_row(r) for r in page.get("instances") or [])
            token = page.get("next_token")
            if not token:
                return rows
            params["after_token"] = token

    def show_instances_v1(self, params: dict) -> dict:
        """One page of ``GET /api/v1/instances/``: ``select_filters``, ``order_by``, ``limit``,
        ``after_token``; returns the envelope (``instances``, ``next_token``, ...)."""
        return self._http.request("GET", "/api/v1/instances/", params=params)

    def show_instance_filters(self) -> list:
        """The distinct statuses, GPU names and verifications among your instances."""
        return self._http.request("GET", "/api/v0/instances/filters/").get("filters", [])

    def show_instance(self, id: int) -> dict | None:
        """One instance (an object, not a list), or None if you have no such instance."""
        data = self._http.request("GET", f"/api/v0/instances/{int(id)}/", params={"owner": "me"})
        row = data.get("instances")
        return instance_row(row) if isinstance(row, dict) else None

    # -- state ------------------------------------------------------------------------------

    def _put_instance(self, id: int, body: dict) -> dict:
        return self._http.request("PUT", f"/api/v0/instances/{int(id)}/", body=body)

    def start_instance(self, id: int) -> dict:
        """Start (or restart) a stopped instance."""
        return self._put_instance(id, {"state": "running"})

    def stop_instance(self, id: int) -> dict:
        """Stop an instance; its disk is kept and still billed."""
        return self._put_instance(id, {"state": "stopped"})

    def start_instances(self, ids: list[int]) -> dict:
        return self._http.request("PUT", "/api/v0/instances/",
                                  body={"state": "running", "ids": [int(i) for i in ids]})

    def stop_instances(self, ids: list[int]) -> dict:
        return self._http.request("PUT", "/api/v0/instances/",
                                  body={"state": "stopped", "ids": [int(i) for i in ids]})

    def reboot_instance(self, id: int) -> dict:
        """Restart the container in place (it keeps its GPUs)."""
        return self._http.request("PUT", f"/api/v0/instances/reboot/{int(id)}/", body={})

    def label_instance(self, id: int, label: str) -> dict:
        return self._put_instance(id, {"label": label})

    def destroy_instance(self, id: int) -> dict:
        """Destroy an instance and its data. Irreversible."""
        return self._http.request("DELETE", f"/api/v0/instances/{int(id)}/", body={})

    def destroy_instances(self, ids: list[int]) -> dict:
        return self._http.request("DELETE", "/api/v0/instances/",
                                  body={"instance_ids": [int(i) for i in ids]})

    def change_bid(self, id: int, price: float | None = None) -> dict:
        """Change an interruptible instance's bid ($/hour)."""
        return self._http.request("PUT", f"/api/v0/instances/bid_price/{int(id)}/",
                                  body={"client_id": "me", "price": price})

    def update_instance(self, id: int, **kwargs: Any) -> dict:
        """Recreate an instance from a new template or image: ``template_id``,
        ``template_hash_id``, ``image``, ``args`` (str), ``env`` (dict), ``onstart``."""
        allowed = ("template_id", "template_hash_id", "image", "args", "env", "onstart")
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise TypeError(f"update_instance() got unexpected arguments {unknown}; "
                            f"it takes {', '.join(allowed)}")
        body: dict[str, Any] = {"id": int(id)}
        body.update({k: kwargs[k] for k in allowed if kwargs.get(k) is not None})
        return self._http.request("PUT", f"/api/v0/instances/update_template/{int(id)}/", body=body)

    # -- logs -------------------------------------------------------------------------------

    def logs(
        self,
        instance_id: int,
        tail: str | int | None = None,
        filter: str | None = None,
        daemon_logs: bool = False,
        *,
        timeout: float = 9.0,
    ) -> str | dict:
        """The instance's log text (``tail`` last lines, lines containing ``filter``). The server
        answers with a ``result_url`` that is polled until the text is ready."""
        body: dict[str, Any] = {}
        if filter:
            body["filter"] = filter
        if tail:
            body["tail"] = str(tail)
        if daemon_logs:
            body["daemon_logs"] = "true"
        data = self._http.request("PUT", f"/api/v0/instances/request_logs/{int(instance_id)}/",
                                  body=body)
        url = data.get("result_url")
        if not url:
            return data
        return self._fetch(url, timeout, f"the logs of instance {instance_id}")

    # -- execute ----------------------------------------------------------------------------

    def execute(self, id: int, command: str, *, timeout: float = 9.0) -> str | dict:
        """The output of ``command`` (``ls``, ``rm`` or ``du`` with arguments, no shell) run in
        the instance, as the official SDK returns it: the text (stdout and stderr), whatever the
        command's exit status. :meth:`execute_result` also gives the exit status."""
        result = self.execute_result(id, command, timeout=timeout)
        return result["output"] if "output" in result else result

    def execute_result(self, id: int, command: str, *, timeout: float = 9.0) -> dict:
        """``{"output": text, "exit_code": n, "msg": …}`` of ``command`` run in the instance
        (``exit_code`` is None when the output was cut while the command still ran)."""
        data = self._http.request("PUT", f"/api/v0/instances/command/{int(id)}/",
                                  body={"command": command})
        url = data.get("result_url")
        if not url:
            return data
        return {"output": self._fetch(url, timeout, f"the output of {command!r}"),
                "exit_code": data.get("exit_code"), "msg": data.get("msg")}

    def _fetch(self, url: str, timeout: float, what: str) -> str:
        """The text at a ``result_url``, polled until it answers 200."""
        deadline = time.monotonic() + timeout
        while True:
            status, text = self._http.fetch_text(url)
            if status == 200:
                return text
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"{what} was not ready after {timeout:g}s ({url} answered {status})")
            time.sleep(0.3)

    # -- waiting ----------------------------------------------------------------------------

    def wait_for_instance(
        self,
        id: int,
        until: Iterable[str] = ("running",),
        timeout: float = 600.0,
        interval: float = 1.0,
        on_change: Callable[[dict], None] | None = None,
    ) -> dict:
        """Poll the instance until its ``actual_status`` is one of ``until`` and return it.

        ``on_change(instance)`` is called whenever its status or ``status_msg`` changes. Raises
        :class:`InstanceFailed` when it exits, fails, is stopped for good or disappears instead, and
        :class:`WaitTimeout` after ``timeout`` seconds.
        """
        wanted = set(until)
        deadline = time.monotonic() + timeout
        seen: tuple | None = None
        inst: dict | None = None
        while True:
            try:
                inst = self.show_instance(id)
            except NotFound:
                inst = None
            if inst is None:
                raise InstanceFailed(f"instance {id} no longer exists")
            status = inst.get("actual_status")
            state = (status, inst.get("status_msg"))
            if state != seen:
                seen = state
                if on_change:
                    on_change(inst)
            if status in wanted:
                return inst
            parked = status == "stopped" and inst.get("intended_status") == "stopped"
            if status in FAILED_STATUSES or parked:
                why = inst.get("status_msg") or "no message"
                raise InstanceFailed(f"instance {id} is {status}: {why}", inst)
            if time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"instance {id} is still {status or 'starting'} after {timeout:g}s "
                    f"(waiting for {' or '.join(sorted(wanted))})", inst,
                )
            time.sleep(interval)
