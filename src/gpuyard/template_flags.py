"""How the friendly template flags (ssh, jupyter, direct, jupyter_lab, login, public,
hide_readme) become stored template fields. Shared by the SDK, the CLI and the server, and
identical to the official client's ``template_fields_from_flags``."""

from __future__ import annotations

from typing import Any


def fields_from_flags(
    *,
    ssh: bool = False,
    jupyter: bool = False,
    direct: bool = False,
    jupyter_lab: bool = False,
) -> dict[str, Any]:
    return {
        "runtype": "jupyter" if jupyter else ("ssh" if ssh else "args"),
        "use_ssh": bool(ssh or jupyter),
        "ssh_direct": bool(ssh and direct),
        "jup_direct": bool(jupyter and direct),
        "use_jupyter_lab": bool(jupyter_lab),
    }


def flags_from_fields(content: dict[str, Any]) -> dict[str, bool]:
    """The flags a stored template was made with (the inverse of :func:`fields_from_flags`)."""
    jupyter = content.get("runtype") == "jupyter"
    return {
        "jupyter": jupyter,
        "ssh": content.get("runtype") == "ssh" or bool(content.get("ssh_direct")),
        "direct": bool(content.get("ssh_direct") or content.get("jup_direct")),
        "jupyter_lab": bool(content.get("use_jupyter_lab")),
    }


def login_repo(login: str | None) -> str | None:
    """``-u user -p pw registry`` → the first token, exactly as the official client sends it."""
    return login.split(" ")[0] if login else None


def direct_ssh(runtype: str | None) -> bool:
    """Whether an instance runtype asks for direct SSH: the official client's ``--direct`` forms
    (``"ssh_direc ssh_proxy"``, ``"jupyter_direc ssh_direc ssh_proxy"``) name ``ssh_direc``."""
    return "ssh_direc" in (runtype or "").split()
