"""create/show/start/stop/reboot/destroy/label/update instance(s), change bid, logs."""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any

from gpuyard.cli.commands._common import declined, handles_errors, sdk_from, show_result
from gpuyard.cli.output import fail, number, print_fields, print_json, print_table, when

CREATE_ARGS = (
    "image", "disk", "env", "label", "extra", "login", "python_utf8", "lang_utf8", "jupyter_lab",
    "jupyter_dir", "force", "cancel_unavail", "template_hash", "user", "bid_price", "ssh",
    "jupyter", "direct", "args", "create_volume", "link_volume", "volume_size", "mount_path",
    "volume_label",
)
RUNTYPE_FLAGS = ("ssh", "jupyter", "jupyter_lab", "jupyter_dir")


# -- formatting ---------------------------------------------------------------------------------

def _port_key(item: tuple[str, Any]) -> tuple[int, str]:
    port, _, proto = item[0].partition("/")
    return (int(port) if port.isdigit() else 0, proto)


def port_lines(inst: dict) -> list[str]:
    """``public-ip:host-port → container-port/proto`` for each published port."""
    ip = inst.get("public_ipaddr") or inst.get("ssh_host") or "?"
    lines = []
    for container, binds in sorted((inst.get("ports") or {}).items(), key=_port_key):
        for bind in binds or []:
            host_ip = bind.get("HostIp")
            shown = ip if host_ip in (None, "", "0.0.0.0", "::") else host_ip
            lines.append(f"{shown}:{bind.get('HostPort')} → {container}")
    return lines


def _ports(inst: dict) -> str | None:
    return "\n".join(port_lines(inst)) or None


def _status(inst: dict) -> str | None:
    actual, intended = inst.get("actual_status"), inst.get("intended_status")
    if actual and intended and actual != intended:
        return f"{actual} → {intended}"
    return actual or intended


def _price(inst: dict) -> str | None:
    price = number(inst.get("dph_total"), "{:.4f}")
    if price and inst.get("is_bid"):
        return f"{price} (bid {number(inst.get('bid_price'), '{:.4f}')})"
    return price


def _age(inst: dict) -> str | None:
    start = inst.get("start_date")
    if not isinstance(start, int | float):
        return None
    secs = max(0, int(time.time() - start))
    if secs < 3600:
        return f"{secs // 60}m"
    if secs < 86400:
        return f"{secs // 3600}h{secs % 3600 // 60:02d}m"
    return f"{secs // 86400}d{secs % 86400 // 3600}h"


def _ssh(inst: dict) -> str | None:
    host, port = inst.get("ssh_host") or inst.get("public_ipaddr"), inst.get("ssh_port")
    return f"ssh -p {port} root@{host}" if host and port else None


def env_lines(env: dict | list | None) -> str | None:
    """Env pairs one per line: ``NAME=value`` for variables, ``-p 8000:8000`` for options."""
    pairs = env.items() if isinstance(env, dict) else (env or [])
    lines = []
    for key, value in pairs:
        if str(key).startswith("-"):
            lines.append(key if value == "1" else f"{key} {value}")
        else:
            lines.append(f"{key}={value}")
    return "\n".join(lines) or None


def _env(inst: dict) -> str | None:
    return env_lines(inst.get("extra_env"))


def _volumes(inst: dict) -> str | None:
    vols = inst.get("volume_info") or []
    return "\n".join(
        f"{v.get('id')} {v.get('name') or ''} at {v.get('mount_path') or '?'}".replace("  ", " ")
        for v in vols
    ) or None


COLUMNS = [
    ("id", "id"),
    ("machine", "machine_id"),
    ("status", _status),
    ("label", "label"),
    ("gpus", lambda r: f"{r.get('num_gpus')}x {r.get('gpu_name')}"),
    ("image", "image_uuid"),
    ("$/hr", _price),
    ("address", lambda r: r.get("public_ipaddr") or r.get("ssh_host")),
    ("ports", _ports),
    ("age", _age),
    ("status message", "status_msg"),
]

DETAIL = [
    ("id", "id"),
    ("status", _status),
    ("status message", "status_msg"),
    ("label", "label"),
    ("machine", "machine_id"),
    ("gpus", lambda r: f"{r.get('num_gpus')}x {r.get('gpu_name')}"),
    ("image", "image_uuid"),
    ("runtype", "image_runtype"),
    ("template", lambda r: " ".join(str(x) for x in (r.get("template_name"),
                                                      r.get("template_hash_id")) if x) or None),
    ("$/hr", _price),
    ("disk GB", lambda r: number(r.get("disk_space"), "{:.0f}")),
    ("address", lambda r: r.get("public_ipaddr") or r.get("ssh_host")),
    ("ssh", _ssh),
    ("ports", _ports),
    ("env", _env),
    ("onstart", "onstart"),
    ("volumes", _volumes),
    ("location", "geolocation"),
    ("started", lambda r: when(r.get("start_date"))),
]

def _filters(query: Any) -> str | None:
    """Machine filters in the query language (docs/query-language.md, "Writing a query back")."""
    if not isinstance(query, dict) or not query:
        return None
    from gpuyard.query import OFFER_FIELDS, describe_query

    return describe_query(query, OFFER_FIELDS)


LAUNCH = [
    ("offer", "offer_id"),
    ("machine", "machine_id"),
    ("image", lambda c: c.get("image_uuid") or ":".join(x for x in (c.get("image"), c.get("tag")) if x)),
    ("template", lambda c: " ".join(str(x) for x in (c.get("template_name"), c.get("template_hash_id"),
                                                      c.get("template_id") and f"(id {c['template_id']})")
                                    if x) or None),
    ("runtype", "runtype"),
    ("env (merged)", lambda c: env_lines(c.get("extra_env")) or c.get("env")),
    ("account secrets", lambda c: "\n".join(f"{k}={v}" for k, v in (c.get("secrets") or {}).items()) or None),
    ("onstart", "onstart"),
    ("args", lambda c: " ".join(c["args"]) if isinstance(c.get("args"), list) else c.get("args")),
    ("disk GB", "disk_space"),
    ("pricing", lambda c: f"interruptible, bid ${c.get('bid_price')}/hr" if c.get("is_bid")
     else "on-demand"),
    ("$/hr", lambda c: number(c.get("dph_total"), "{:.4f}")),
    ("label", "label"),
    ("machine filters", lambda c: _filters(c.get("extra_filters"))),
    ("volume", "volume_info"),
]


# -- create -------------------------------------------------------------------------------------

def _create_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs = {k: getattr(args, k) for k in CREATE_ARGS}
    kwargs["onstart_cmd"] = args.onstart_cmd or args.entrypoint
    if args.onstart:
        with open(args.onstart, encoding="utf-8") as fh:
            kwargs["onstart_cmd"] = fh.read()
    flagged = any(kwargs[k] for k in RUNTYPE_FLAGS) or kwargs["args"] is not None
    if not args.template_hash and not flagged:
        # The official CLI's default: plain SSH (a bare --direct keeps it).
        kwargs.update(runtype="ssh", direct=False)
    return kwargs


#: ``pulling <image>: <N>%`` then optional detail in parentheses, as the docker runtime reports
#: an image pull in ``status_msg``, e.g. ``pulling vllm/vllm-openai:latest: 45% (1.2 of 2.6 GB)``.
PULL_RE = re.compile(r"^pulling (?P<image>\S+): (?P<pct>\d{1,3}(?:\.\d+)?)%(?:\s*\((?P<detail>[^)]*)\))?")
#: Without a terminal, a pull prints a line when it advanced this many points (and at 100%).
PLAIN_PULL_STEP = 10.0


def parse_pull(msg: str | None) -> tuple[str, float, str] | None:
    """``(image, percent, detail)`` when ``msg`` reports an image pull, else None."""
    match = PULL_RE.match(msg or "")
    if not match:
        return None
    return match["image"], min(100.0, float(match["pct"])), (match["detail"] or "").strip()


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def _status_line(inst: dict) -> str:
    line = inst.get("actual_status") or "starting"
    if inst.get("status_msg") and inst["status_msg"] != line:
        line += f": {inst['status_msg']}"
    return line


class _Follower:
    """Shows an instance's progress: a spinner with the status, and a progress bar while the
    runtime pulls the image. Without a terminal: plain timestamped lines, no control codes."""

    def __init__(self, out: Any, instance_id: int):
        self.out = out
        self.instance_id = instance_id
        self.live = out.is_terminal
        self.spinner: Any = None
        self.progress: Any = None
        self.task: Any = None
        self.pull: tuple[str, float] | None = None  # (image, percent last shown)

    def line(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        if self.live:
            self.out.print(f"[dim]{stamp}[/dim] {escape(text)}", markup=True, highlight=False)
        else:
            self.out.print(f"{stamp} {text}", markup=False, highlight=False)

    def start(self) -> None:
        self._spin(f"instance {self.instance_id}: waiting for it to run")

    def _spin(self, text: str) -> None:
        if not self.live:
            return
        if self.spinner is None:
            self.spinner = self.out.status(escape(text))
            self.spinner.start()
        else:
            self.spinner.update(escape(text))

    def _stop_spinner(self) -> None:
        if self.spinner is not None:
            self.spinner.stop()
            self.spinner = None

    def _stop_progress(self, finished: bool) -> None:
        if self.progress is not None:
            if finished:
                self.progress.update(self.task, completed=100)
            self.progress.refresh()
            self.progress.stop()
            self.progress = self.task = None

    def changed(self, inst: dict) -> None:
        pulling = parse_pull(inst.get("status_msg"))
        if pulling:
            self._pulling(inst, *pulling)
            return
        if self.pull is not None:  # the pull is over; done unless the runtime says otherwise
            from gpuyard.sdk.instances import FAILED_STATUSES

            finished = inst.get("actual_status") not in FAILED_STATUSES
            self._stop_progress(finished)
            if not self.live and finished and self.pull[1] < 100:
                self.line(f"pulling {self.pull[0]}: done")
            self.pull = None
        text = _status_line(inst)
        self.line(text)
        self._spin(f"instance {self.instance_id}: {text}")

    def _pulling(self, inst: dict, image: str, pct: float, detail: str) -> None:
        new_image = self.pull is None or self.pull[0] != image
        if not self.live:
            last = None if new_image else self.pull[1]
            if last is None or pct - last >= PLAIN_PULL_STEP or (pct >= 100 > last):
                self.line(_status_line(inst))
                self.pull = (image, pct)
            return
        if new_image:
            self._stop_progress(finished=False)
            self._stop_spinner()
            self.line(f"{inst.get('actual_status') or 'loading'}: pulling {image}")
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

            self.progress = Progress(
                TextColumn("  pulling {task.description}"), BarColumn(), TaskProgressColumn(),
                TextColumn("{task.fields[detail]}"), console=self.out, transient=False,
            )
            self.task = self.progress.add_task(escape(image), total=100, detail="")
            self.progress.start()
        self.progress.update(self.task, completed=pct, detail=escape(detail))
        self.progress.refresh()
        self.pull = (image, pct)

    def close(self) -> None:
        self._stop_progress(finished=False)
        self._stop_spinner()


def _follow(sdk: Any, instance_id: int, timeout: float, quiet: bool) -> dict:
    """Poll the instance until it runs, printing each status change (and a progress bar while
    its image is pulled); raise if it fails."""
    if quiet:
        return sdk.wait_for_instance(instance_id, timeout=timeout)
    from gpuyard.cli.output import console

    follower = _Follower(console(), instance_id)
    follower.start()
    try:
        return sdk.wait_for_instance(instance_id, timeout=timeout, on_change=follower.changed)
    finally:
        follower.close()


@handles_errors
def create(args: argparse.Namespace) -> int:
    try:
        kwargs = _create_kwargs(args)
    except OSError as exc:
        return fail(f"cannot read the onstart file {args.onstart}: {exc.strerror}")
    raw = getattr(args, "raw", False)
    with sdk_from(args) as sdk:
        result = sdk.create_instance(args.id, dry_run=args.dry_run, **kwargs)
        if args.dry_run:
            if raw:
                print_json(result)
            else:
                print_fields(result.get("launch") or {}, LAUNCH)
                print("Dry run: nothing was rented.")
            return 0
        if not result.get("success"):
            return fail(result.get("msg") or str(result))
        new_id = result.get("new_contract")
        if not args.wait:
            msg = result.get("msg") or f"instance {new_id} created"
            return show_result(args, result, f"Started. {msg[:1].upper()}{msg[1:]} (offer {args.id}).")
        if not raw:
            print(f"Instance {new_id} created from offer {args.id}.")
        inst = _follow(sdk, new_id, args.timeout, quiet=raw)
    if raw:
        print_json(inst)
        return 0
    print(f"Instance {new_id} is running.")
    print_fields(inst, [("ssh", _ssh), ("ports", _ports)])
    return 0


@handles_errors
def create_many(args: argparse.Namespace) -> int:
    try:
        kwargs = _create_kwargs(args)
    except OSError as exc:
        return fail(f"cannot read the onstart file {args.onstart}: {exc.strerror}")
    with sdk_from(args) as sdk:
        result = sdk.create_instances(args.ids, **kwargs)
    return show_result(args, result, f"Started. Requested {len(args.ids)} instances.")


# -- show ---------------------------------------------------------------------------------------

@handles_errors
def show_all(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        rows = sdk.show_instances()
    if getattr(args, "raw", False):
        print_json(rows)
    elif args.quiet:
        for row in rows:
            print(row.get("id"))
    elif rows:
        print_table(rows, COLUMNS)
    else:
        print("No instances.")
    return 0


@handles_errors
def show_one(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        inst = sdk.show_instance(args.id)
    if getattr(args, "raw", False):
        print_json(inst if inst is not None else {"instances": None})
        return 0 if inst is not None else 1
    if inst is None:
        return fail(f"instance {args.id} not found")
    if args.quiet:
        print(inst.get("id"))
    else:
        print_fields(inst, DETAIL)
    return 0


# -- state changes ------------------------------------------------------------------------------

def _change(args: argparse.Namespace, method: str, target: Any, done: str) -> int:
    with sdk_from(args) as sdk:
        result = getattr(sdk, method)(target)
    if isinstance(result, dict) and result.get("success") is False:
        return fail(result.get("msg") or str(result))
    return show_result(args, result, done)


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)


@handles_errors
def start_one(args: argparse.Namespace) -> int:
    return _change(args, "start_instance", args.id, f"Starting instance {args.id}.")


@handles_errors
def stop_one(args: argparse.Namespace) -> int:
    return _change(args, "stop_instance", args.id, f"Stopping instance {args.id}.")


@handles_errors
def start_many(args: argparse.Namespace) -> int:
    return _change(args, "start_instances", args.ids, f"Starting instances {_ids(args.ids)}.")


@handles_errors
def stop_many(args: argparse.Namespace) -> int:
    return _change(args, "stop_instances", args.ids, f"Stopping instances {_ids(args.ids)}.")


@handles_errors
def reboot(args: argparse.Namespace) -> int:
    return _change(args, "reboot_instance", args.id, f"Rebooting instance {args.id}.")


@handles_errors
def destroy_one(args: argparse.Namespace) -> int:
    question = f"Destroy instance {args.id}? Its data is deleted; this cannot be undone."
    if declined(args, question):
        return 1
    return _change(args, "destroy_instance", args.id, f"Destroyed instance {args.id}.")


@handles_errors
def destroy_many(args: argparse.Namespace) -> int:
    question = f"Destroy instances {_ids(args.ids)}? Their data is deleted; this cannot be undone."
    if declined(args, question):
        return 1
    return _change(args, "destroy_instances", args.ids, f"Destroyed instances {_ids(args.ids)}.")


@handles_errors
def label(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        result = sdk.label_instance(args.id, args.label)
    return show_result(args, result, f"Label of instance {args.id} set to {args.label!r}.")


@handles_errors
def change_bid(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        result = sdk.change_bid(args.id, price=args.price)
    price = "the minimum" if args.price is None else f"${args.price}/hr"
    return show_result(args, result, f"Bid of instance {args.id} changed to {price}.")


@handles_errors
def update(args: argparse.Namespace) -> int:
    fields = ("template_id", "template_hash_id", "image", "args", "env", "onstart")
    kwargs = {k: getattr(args, k) for k in fields if getattr(args, k) is not None}
    if not kwargs:
        return fail("nothing to update; give --template_id, --template_hash_id, --image, --args, "
                    "--env or --onstart")
    with sdk_from(args) as sdk:
        result = sdk.update_instance(args.id, **kwargs)
    if getattr(args, "raw", False):
        print_json(result)
        return 0
    if not result.get("success"):
        return fail(result.get("msg") or str(result))
    print(f"Instance {args.id} updated.")
    updated = result.get("updated_instance")
    if isinstance(updated, dict):
        print_fields(updated, DETAIL)
    return 0


@handles_errors
def logs(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        text = sdk.logs(args.id, tail=args.tail, filter=args.filter, daemon_logs=args.daemon_logs)
    if isinstance(text, dict):  # no result_url: the server said why
        return fail(text.get("msg") or str(text))
    print(text.rstrip("\n"))
    return 0


@handles_errors
def execute(args: argparse.Namespace) -> int:
    """Print the command's output; exit 1 when it failed (its exit status is said on stderr)."""
    with sdk_from(args) as sdk:
        result = sdk.execute_result(args.id, args.command)
    if "output" not in result:  # no result_url: the server said why
        return fail(result.get("msg") or str(result))
    sys.stdout.write(result["output"])
    code = result.get("exit_code")
    if code == 0:
        return 0
    return fail(result.get("msg") or f"the command exited with status {code}")
