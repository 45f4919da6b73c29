"""API key permissions (VAST-WIRE §15): the one table of every API route's name and category,
and the rules that apply a key's permission document to a call.

A key without a permission document is a *full* key: it may call everything. A key with one
(``{"api": {category: {} | {route_name: {"constraints": {param: {op: value}}}}}}``) may call a
route when its document grants the route's category whole (``{}``), or names the route in that
category and the call's parameters meet the route's constraints. A route missing from
:data:`RULES` is refused to every restricted key (new endpoints fail closed) and
``tests/services/test_permissions.py`` asserts that every route of the API has an entry.

The table is rendered into docs/api-keys.md (``python -m gpuyard.services.accounts.permissions``), and a
test keeps the two equal. Enforcement happens once per call, in ``api/deps.py``; nothing here
knows HTTP beyond the method and path of a route.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gpuyard.errors import Forbidden

CATEGORIES: dict[str, str] = {
    "instance_read": "see instances, their logs and volumes",
    "instance_write": "create, start, stop, change and destroy instances; attach and detach their "
                      "SSH keys; create and delete volumes",
    "user_read": "see the account, its API keys, SSH keys, secrets (env vars) and templates",
    "user_write": "create and change API keys, SSH keys, secrets (env vars) and templates",
    "billing_read": "see invoices, charges and usage",
    "billing_write": "move credit (no gpuyard call yet)",
    "machine_read": "see the machines you host and their maintenance windows",
    "machine_write": "list, unlist and price the machines you host; schedule their maintenance",
    "misc": "search offers and volume offers",
    "team_read": "see teams and roles (no gpuyard call yet)",
    "team_write": "manage teams and roles (no gpuyard call yet)",
}
OPS = ("eq", "lte", "gte", "in")
MAX_IN = 1000  # values of one "in" constraint
MAX_TEXT_VALUE = 500  # characters of a text constraint value


@dataclass(frozen=True)
class Param:
    """A request parameter a constraint may name: ``name`` in the permission document, found at
    ``field`` of the call's path, query string or JSON body. ``kind``: ``id`` (a whole number),
    ``number`` or ``text``; ``many``: the field is a list and every item must meet the
    constraint."""

    name: str
    source: str  # "path" | "query" | "body"
    field: str
    kind: str  # "id" | "number" | "text"
    what: str
    many: bool = False


@dataclass(frozen=True)
class Rule:
    name: str
    category: str
    method: str
    path: str  # exactly as the route declares it, {name:int} included
    params: tuple[Param, ...] = ()

    @property
    def shown_path(self) -> str:
        return self.path.replace(":int}", "}")

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


def _path_id(what: str, field: str = "instance_id") -> Param:
    return Param("id", "path", field, "id", what)


INSTANCE = _path_id("the instance id (path)")
PRICE = Param("price", "body", "price", "number", "the bid in $/hour (absent: on-demand)")
DISK = Param("disk", "body", "disk", "number", "the disk in GB (absent: the template's or 10)")
IMAGE = Param("image", "body", "image", "text", "the image as sent (absent: the template's)")
TEMPLATE_HASH = Param("template_hash_id", "body", "template_hash_id", "text", "the template hash")
LAUNCH = (PRICE, DISK, IMAGE, TEMPLATE_HASH)
SSH_KEY_ID = _path_id("the ssh key id (path)", "key_id")
MACHINE = _path_id("the machine id (path)", "machine_id")
SECRET_NAME = Param("key", "body", "key", "text", "the secret's name")

#: Every authenticated route of the API: its name, its category and what constraints may name.
RULES: tuple[Rule, ...] = (
    # instance_read
    Rule("api.instance.list", "instance_read", "GET", "/api/v1/instances"),
    Rule("api.instance.list_all", "instance_read", "GET", "/api/v0/instances"),
    Rule("api.instance.filters", "instance_read", "GET", "/api/v0/instances/filters"),
    Rule("api.instance.show", "instance_read", "GET", "/api/v0/instances/{instance_id:int}", (INSTANCE,)),
    Rule("api.instance.request_logs", "instance_read", "PUT",
         "/api/v0/instances/request_logs/{instance_id:int}", (INSTANCE,)),
    Rule("api.volume.list", "instance_read", "GET", "/api/v0/volumes"),
    # instance_write
    Rule("api.instance.create", "instance_write", "PUT", "/api/v0/asks/{ask_id:int}",
         (_path_id("the offer id (path)", "ask_id"), *LAUNCH)),
    Rule("api.instance.create_many", "instance_write", "POST", "/api/v0/asks/bulk",
         (Param("id", "body", "ids", "id", "the offer ids (body ids)", many=True), *LAUNCH)),
    Rule("api.instance.launch", "instance_write", "PUT", "/api/v0/launch_instance", LAUNCH),
    Rule("api.instance.manage", "instance_write", "PUT", "/api/v0/instances/{instance_id:int}",
         (INSTANCE, Param("state", "body", "state", "text", '"running" or "stopped" (absent: a label)'))),
    Rule("api.instance.manage_many", "instance_write", "PUT", "/api/v0/instances",
         (Param("id", "body", "ids", "id", "the instance ids (body ids)", many=True),
          Param("state", "body", "state", "text", '"running" or "stopped"'))),
    Rule("api.instance.reboot", "instance_write", "PUT", "/api/v0/instances/reboot/{instance_id:int}",
         (INSTANCE,)),
    Rule("api.instance.recycle", "instance_write", "PUT", "/api/v0/instances/recycle/{instance_id:int}",
         (INSTANCE,)),
    Rule("api.instance.update", "instance_write", "PUT",
         "/api/v0/instances/update_template/{instance_id:int}", (INSTANCE, IMAGE, TEMPLATE_HASH)),
    Rule("api.instance.change_bid", "instance_write", "PUT",
         "/api/v0/instances/bid_price/{instance_id:int}", (INSTANCE, PRICE)),
    Rule("api.instance.destroy", "instance_write", "DELETE", "/api/v0/instances/{instance_id:int}",
         (INSTANCE,)),
    Rule("api.instance.destroy_many", "instance_write", "DELETE", "/api/v0/instances",
         (Param("id", "body", "instance_ids", "id", "the instance ids (body instance_ids)", many=True),)),
    Rule("api.instance.ssh_attach", "instance_write", "POST", "/api/v0/instances/{instance_id:int}/ssh",
         (INSTANCE,)),
    Rule("api.instance.ssh_detach", "instance_write", "DELETE",
         "/api/v0/instances/{instance_id:int}/ssh/{key_id}", (INSTANCE,)),
    Rule("api.instance.execute", "instance_write", "PUT",
         "/api/v0/instances/command/{instance_id:int}", (INSTANCE,)),
    Rule("api.instance.copy", "instance_write", "PUT", "/api/v0/commands/copy_direct"),
    Rule("api.instance.copy_rsync", "instance_write", "PUT", "/api/v0/commands/rsync"),
    Rule("api.volume.create", "instance_write", "PUT", "/api/v0/volumes",
         (Param("id", "body", "id", "id", "the volume offer id (body id)"),
          Param("size", "body", "size", "number", "the size in GB (absent: 15)"))),
    Rule("api.volume.delete", "instance_write", "DELETE", "/api/v0/volumes",
         (Param("id", "query", "id", "id", "the volume id (query id)"),)),
    # user_read
    Rule("api.user.show", "user_read", "GET", "/api/v0/users/current"),
    Rule("api.template.search", "user_read", "GET", "/api/v0/template"),
    Rule("api.template.versions", "user_read", "GET", "/api/v0/template/{template_id:int}/versions",
         (_path_id("the template id (path)", "template_id"),)),
    Rule("api.template.show", "user_read", "GET", "/api/v0/template/hash/{hash_id}",
         (Param("hash_id", "path", "hash_id", "text", "the template hash (path)"),)),
    Rule("api.secret.list", "user_read", "GET", "/api/v0/secrets"),
    Rule("api.ssh_key.list", "user_read", "GET", "/api/v0/ssh"),
    Rule("api.apikey.list", "user_read", "GET", "/api/v0/auth/apikeys"),
    Rule("api.apikey.show", "user_read", "GET", "/api/v0/auth/apikeys/{key_id:int}",
         (_path_id("the API key id (path)", "key_id"),)),
    # user_write
    Rule("api.template.create", "user_write", "POST", "/api/v0/template"),
    Rule("api.template.edit", "user_write", "PUT", "/api/v0/template",
         (Param("hash_id", "body", "hash_id", "text", "the template's current hash"),)),
    Rule("api.template.update", "user_write", "PUT", "/api/v1/template",
         (Param("id", "body", "id", "id", "the template id (body id)"),)),
    Rule("api.template.delete", "user_write", "DELETE", "/api/v0/template",
         (Param("id", "body", "template_id", "id", "the template id (body template_id)"),
          Param("hash_id", "body", "hash_id", "text", "the template hash (body hash_id)"))),
    Rule("api.secret.create", "user_write", "POST", "/api/v0/secrets", (SECRET_NAME,)),
    Rule("api.secret.update", "user_write", "PUT", "/api/v0/secrets", (SECRET_NAME,)),
    Rule("api.secret.delete", "user_write", "DELETE", "/api/v0/secrets", (SECRET_NAME,)),
    Rule("api.ssh_key.create", "user_write", "POST", "/api/v0/ssh"),
    Rule("api.ssh_key.update", "user_write", "PUT", "/api/v0/ssh/{key_id:int}", (SSH_KEY_ID,)),
    Rule("api.ssh_key.delete", "user_write", "DELETE", "/api/v0/ssh/{key_id:int}", (SSH_KEY_ID,)),
    Rule("api.apikey.create", "user_write", "POST", "/api/v0/auth/apikeys"),
    Rule("api.apikey.delete", "user_write", "DELETE", "/api/v0/auth/apikeys/{key_id:int}",
         (_path_id("the API key id (path)", "key_id"),)),
    Rule("api.apikey.reset", "user_write", "PUT", "/api/v0/commands/reset_apikey"),
    # billing_read
    Rule("api.billing.invoices", "billing_read", "GET", "/api/v0/users/me/invoices"),
    Rule("api.billing.invoices_v1", "billing_read", "GET", "/api/v1/invoices"),
    Rule("api.billing.charges", "billing_read", "GET", "/api/v0/charges"),
    Rule("api.billing.contracts", "billing_read", "POST", "/api/v0/contracts/fetch"),
    Rule("api.billing.usage", "billing_read", "GET", "/api/v0/usage"),
    # machine_read
    Rule("api.machine.list", "machine_read", "GET", "/api/v0/machines"),
    Rule("api.machine.maintenances", "machine_read", "GET", "/api/v0/machines/maintenances"),
    Rule("api.machine.show", "machine_read", "GET", "/api/v0/machines/{machine_id:int}", (MACHINE,)),
    # machine_write
    Rule("api.machine.list_asks", "machine_write", "PUT", "/api/v0/machines/create_asks",
         (Param("id", "body", "machine", "id", "the machine id (body machine)"),
          Param("price_gpu", "body", "price_gpu", "number", "the $/GPU/hour asked (absent: kept)"))),
    Rule("api.machine.unlist", "machine_write", "DELETE", "/api/v0/machines/{machine_id:int}/asks",
         (MACHINE,)),
    Rule("api.machine.schedule_maint", "machine_write", "PUT",
         "/api/v0/machines/{machine_id:int}/dnotify", (MACHINE,)),
    Rule("api.machine.cancel_maint", "machine_write", "PUT",
         "/api/v0/machines/{machine_id:int}/cancel_maint", (MACHINE,)),
    # misc
    Rule("api.offer.search", "misc", "POST", "/api/v0/bundles"),
    Rule("api.offer.search_asks", "misc", "PUT", "/api/v0/search/asks"),
    Rule("api.volume.search_offers", "misc", "POST", "/api/v0/volumes/search"),
)
#: Routes that take no API key at all (nothing to permit).
PUBLIC: frozenset[tuple[str, str]] = frozenset({
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/api/v0/gpu_names/unique"),
    ("GET", "/api/v0/instances/logs/{token}"),
})

BY_ROUTE: dict[tuple[str, str], Rule] = {(r.method, r.path): r for r in RULES}
BY_NAME: dict[str, Rule] = {r.name: r for r in RULES}
assert len(BY_ROUTE) == len(RULES) == len(BY_NAME), "a route or a route name is in RULES twice"
assert all(r.category in CATEGORIES for r in RULES)


def rule_for(method: str, path: str) -> Rule | None:
    return BY_ROUTE.get(("GET" if method == "HEAD" else method, path))


# -- values ------------------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _coerce(kind: str, value: Any) -> Any:
    """A request value as the constraint compares it; None when it has no such form."""
    if value is None:
        return None
    if kind == "text":
        return value if isinstance(value, str) else None
    number = _number(value)
    if kind == "id" and number is not None and not number.is_integer():
        return None
    return number


def _meets(value: Any, op: str, bound: Any) -> bool:
    if value is None:
        return False
    if op == "eq":
        return value == bound
    if op == "in":
        return value in bound
    if isinstance(value, str):
        return False
    return value <= bound if op == "lte" else value >= bound


def describe(param: str, ops: Mapping[str, Any]) -> str:
    return " and ".join(f"{param} {op} {_show(bound)}" for op, bound in ops.items())


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


# -- enforcement -------------------------------------------------------------------------------
def _refuse(rule: Rule, why: str) -> Forbidden:
    return Forbidden(
        f"this API key may not call {rule.method} {rule.shown_path} ({rule.name}, category "
        f"{rule.category}): {why}. Use a key that has it (docs/api-keys.md)",
        "permission_denied",
    )


def summary(doc: Mapping[str, Any] | None) -> str:
    """A short text of what a permission document grants (``full access`` for none)."""
    if doc is None:
        return "full access"
    parts: list[str] = []
    for category, grant in (doc.get("api") or {}).items():
        if not grant:
            parts.append(category)
            continue
        routes = []
        for name, entry in grant.items():
            limits = [describe(p, ops) for p, ops in ((entry or {}).get("constraints") or {}).items()]
            routes.append(name + (f" ({'; '.join(limits)})" if limits else ""))
        parts.append(f"{category}: {', '.join(routes)}")
    return "; ".join(parts) or "nothing"


def authorize(doc: Mapping[str, Any] | None, method: str, path: str | None,
              values: Callable[[Param], Any]) -> None:
    """Raise Forbidden (403, naming what is missing) unless a key with permission document
    ``doc`` may call the route ``method path``. ``values(param)`` gives the call's raw value of
    a parameter (None when the call has none)."""
    if doc is None:
        return  # a full key
    rule = rule_for(method, path) if path is not None else None
    if rule is None:
        raise Forbidden(
            f"{method} {path or 'this path'} has no entry in gpuyard's permission table, so only a "
            "full key (one created without a permission document) may call it",
            "permission_denied",
        )
    granted = doc.get("api") if isinstance(doc.get("api"), dict) else {}
    grant = granted.get(rule.category)
    if grant is None:
        has = ", ".join(granted) or "none"
        raise _refuse(rule, f"the key lacks the permission {rule.category} (it has: {has})")
    if not grant:
        return  # the whole category
    entry = grant.get(rule.name) if isinstance(grant, dict) else None
    if entry is None:
        raise _refuse(rule, f"the key's {rule.category} grants only {', '.join(grant)}")
    constraints = (entry or {}).get("constraints") or {}
    for name, ops in constraints.items():
        param = rule.param(name)
        if param is None:  # a document from another release: refuse what we cannot check
            raise _refuse(rule, f"the key constrains {name!r}, which this route does not have")
        raw = values(param)
        items = raw if param.many and isinstance(raw, list) else [raw]
        for item in items if items else [None]:
            value = _coerce(param.kind, item)
            for op, bound in ops.items():
                if not _meets(value, op, bound):
                    given = "gives none" if item is None else f"has {name} {_show(item)}"
                    raise _refuse(rule, f"the key allows it only with {describe(name, ops)}, and "
                                        f"the call {given}")


# -- one document within another ---------------------------------------------------------------
def _implies(new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    """Whether constraint ops ``new`` on a parameter allow no value that ``old`` refuses."""
    allowed: list[Any] | None = None  # the values new allows, when it names them
    if "eq" in new:
        allowed = [new["eq"]]
    if "in" in new:
        allowed = [v for v in new["in"] if allowed is None or v in allowed]
    for op, bound in old.items():
        if allowed is not None:
            if all(_meets(v, op, bound) for v in allowed):
                continue
            return False
        if op in ("lte", "gte") and op in new:
            if (new[op] <= bound) if op == "lte" else (new[op] >= bound):
                continue
        return False
    return True


def additions(new: Mapping[str, Any] | None, old: Mapping[str, Any] | None) -> list[str]:
    """What a key with document ``new`` could call that one with ``old`` cannot (empty when
    ``new`` grants nothing more), in words."""
    if old is None:
        return []
    old_api: Mapping[str, Any] = old.get("api") or {}
    if new is None:
        return ["full access (every call, including ones without a table entry)"]
    added: list[str] = []
    for category, grant in (new.get("api") or {}).items():
        have = old_api.get(category)
        if have is None:
            added.append(category if not grant else f"{category} ({', '.join(grant)})")
            continue
        if not have:
            continue  # the creator has the whole category
        if not grant:
            added.append(f"all of {category} (the creating key has only {', '.join(have)})")
            continue
        for name, entry in grant.items():
            if name not in have:
                added.append(f"{name} ({category})")
                continue
            mine = (entry or {}).get("constraints") or {}
            for param, ops in ((have[name] or {}).get("constraints") or {}).items():
                if param not in mine or not _implies(mine[param], ops):
                    added.append(f"{name} without the constraint {describe(param, ops)}")
    return added


# -- the table as documentation ----------------------------------------------------------------
def markdown_table(rules: Iterable[Rule] = RULES) -> str:
    """The table of docs/api-keys.md."""
    lines = ["| route name | category | call | constraints may name |", "|---|---|---|---|"]
    for rule in sorted(rules, key=lambda r: (list(CATEGORIES).index(r.category), r.name)):
        params = "; ".join(f"`{p.name}` ({p.kind}{', each' if p.many else ''}): {p.what}"
                           for p in rule.params) or "-"
        lines.append(f"| `{rule.name}` | {rule.category} | `{rule.method} {rule.shown_path}` | {params} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(markdown_table(), end="")
