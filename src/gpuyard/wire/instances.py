"""Instance requests and answers (VAST-WIRE §6; docs/merge-rules.md, docs/instances.md).

:class:`LaunchRequest` is the create-instance body: the official client's 17 keys plus its
conditional ones and a few of our own. Everything a launch needs parsed (the env string or dict,
``args``, the machine filters, ``volume_info``) is parsed here, once, before any transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
    model_validator,
)

from gpuyard import shellwords
from gpuyard.envspec import EnvSpec, parse_any
from gpuyard.errors import InvalidInput
from gpuyard.query import normalize_limit, normalize_order, normalize_query
from gpuyard.query.fields import INSTANCE_FIELDS
from gpuyard.query.validate import show
from gpuyard.services.catalog.template_content import normalize_filters
from gpuyard.wire.base import WireModel, parse
from gpuyard.wire.offers import OfferSearch, search_body
from gpuyard.wire.types import (
    MAX_LIST,
    MAX_TEXT,
    Flag,
    HashId,
    Id,
    IdList,
    PositiveNumber,
    Text,
    bounded_list,
    check_text,
    type_name,
)
from gpuyard.wire.volumes import VolumeLaunch

RUNTYPES = (
    "ssh", "ssh_proxy", "ssh_direc ssh_proxy", "jupyter", "jupyter_proxy ssh_proxy",
    "jupyter_direc ssh_direc ssh_proxy", "args",
)
MAX_LABEL = 256
CLIENT_DEFAULT_DISK = 10  # GB: what the official client sends when the user gave no --disk
MAX_BULK_CREATE = 256
MAX_BULK = 1000
ENV_EXAMPLE = ('a Docker-flag string such as "-e VAR=value -p 8000:8000" or an object such as '
               '{"VAR": "value", "-p 8000:8000": "1"}')


def _client_id(value: Any) -> Any:
    if value not in (None, "me"):
        raise InvalidInput(f'client_id must be "me" (instances are rented for yourself), not {show(value)}')
    return value


ClientId = Annotated[str | None, BeforeValidator(_client_id), Field(description='"me"')]


def _env(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return value  # bounded (before it is split) by the env parser, with its own message
    if not isinstance(value, dict):
        raise InvalidInput(f"env must be {ENV_EXAMPLE}, not {type_name(value)}", code="invalid_env")
    return value


Env = Annotated[str | dict[str, Any] | None, BeforeValidator(_env), Field(description=ENV_EXAMPLE)]


def _runtype(value: Any) -> Any:
    if value is not None and value not in RUNTYPES:
        raise InvalidInput(f"runtype must be one of {', '.join(map(repr, RUNTYPES))}, not {show(value)}")
    return value


def _args(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return None if value is None else check_text(value, "args", MAX_TEXT)
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise InvalidInput('args must be a list of strings, e.g. ["-c", "echo hi"]')
    bounded_list(value, "args", MAX_LIST, '["-c", "echo hi"]')
    if sum(len(a) for a in value) > MAX_TEXT:
        raise InvalidInput(f"args are longer than {MAX_TEXT} characters in all")
    return value


def _target_state(value: Any) -> Any:
    if value not in (None, "running", "stopped"):
        raise InvalidInput(f'target_state must be "running" or "stopped", not {show(value)}')
    return value


def _words(text: str, name: str) -> list[str]:
    """``text`` split into words as a shell would; a stray quote or backslash is a 400."""
    try:
        return shellwords.split(text)
    except ValueError as exc:
        raise InvalidInput(f"{name}: {exc} in {show(text)}; close every quote you open and escape "
                           "a lone backslash as \\\\, or send args as a list of strings") from None


class LaunchRequest(WireModel):
    """``PUT /api/v0/asks/{offer_id}/``: what to run on the rented offer."""

    what = "create-instance"
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    client_id: ClientId = None
    image: Text(500, description="Docker image, overrides the template's") | None = None
    env: Env = None
    price: PositiveNumber("a bid in $/hour", "a bid: the instance becomes interruptible") | None = None
    disk: PositiveNumber("a disk size in GB") | None = None
    label: Text(MAX_LABEL) | None = None
    extra: Text() | None = None
    onstart: Text(description="shell script run at start") | None = None
    image_login: Text(4096, description="registry login: -u USER -p PASSWORD REGISTRY") | None = None
    python_utf8: Flag | None = None
    lang_utf8: Flag | None = None
    use_jupyter_lab: Flag | None = None
    jupyter_dir: Text(500) | None = None
    force: Flag | None = None
    cancel_unavail: Flag | None = None
    template_hash_id: HashId | None = None
    user: Text(200) | None = None
    runtype: Annotated[str | None, BeforeValidator(_runtype), Field(description=", ".join(RUNTYPES))] = None
    args: Annotated[list[str] | str | None, BeforeValidator(_args)] = None
    volume_info: VolumeLaunch | None = None
    # sent by the official package's smaller client, or ours
    template_id: Id | None = None
    args_str: Text() | None = None
    target_state: Annotated[Literal["running", "stopped"] | None, BeforeValidator(_target_state)] = None
    extra_filters: Annotated[dict[str, Any] | str | None, Field(description="machine filters")] = None
    dry_run: Flag | None = Field(None, description="compute the merged launch, rent nothing")
    vm: Flag | None = None

    _env_spec: EnvSpec = PrivateAttr(default_factory=EnvSpec)
    _arg_list: list[str] | None = PrivateAttr(default=None)
    _filters: dict[str, Any] = PrivateAttr(default_factory=dict)
    _client_default_disk: bool = PrivateAttr(default=False)

    @model_validator(mode="wrap")
    @classmethod
    def _note_default_disk(cls, data: Any, handler: Any) -> Any:
        """The official CLI and SDK always send ``disk``, and their default is the integer 10
        (an explicit ``--disk`` is sent as a float): remember which one came."""
        model = handler(data)
        raw = data.get("disk") if isinstance(data, dict) else None
        model._client_default_disk = type(raw) is int and raw == CLIENT_DEFAULT_DISK
        return model

    @model_validator(mode="after")
    def _parse(self) -> LaunchRequest:
        """Parse the env, args and filters once, here at the edge."""
        self._env_spec = parse_any(self.env)
        if isinstance(self.args, list):
            self._arg_list = list(self.args)
        elif isinstance(self.args, str):
            self._arg_list = _words(self.args, "args")
        elif self.args_str:
            self._arg_list = _words(self.args_str, "args_str") or None
        self._filters = normalize_filters(self.extra_filters)
        return self

    @property
    def env_spec(self) -> EnvSpec:
        return self._env_spec

    @property
    def client_default_disk(self) -> bool:
        """``disk`` is the official client's default (the integer 10), not the user's choice."""
        return self._client_default_disk

    @property
    def env_given(self) -> bool:
        return self.env not in (None, "", {})

    @property
    def arg_list(self) -> list[str] | None:
        return self._arg_list

    @property
    def filters(self) -> dict[str, Any]:
        return self._filters

    @property
    def state(self) -> str:
        return self.target_state or "running"


class BulkLaunch(LaunchRequest):
    """``POST /api/v0/asks/bulk/``: one launch on several offers."""

    what = "bulk create-instance"
    ids: IdList(MAX_BULK_CREATE, what="offer ids", unique=False) = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _needs_ids(self) -> BulkLaunch:
        if not self.ids:
            raise InvalidInput("ids must be a non-empty list of offer ids, e.g. [12, 13]")
        return self


class LaunchSearch(LaunchRequest):
    """``PUT /api/v0/launch_instance/``: search offers with ``q`` and rent the first that fits."""

    what = "launch-instance"
    q: Any = Field(None, description='an offer query: {"num_gpus": {"eq": 1}, "gpu_name": {"eq": "A100"}}')

    _search: OfferSearch | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _query(self) -> LaunchSearch:
        self._search = search_body(self.q)
        return self

    @property
    def search(self) -> OfferSearch:
        assert self._search is not None
        return self._search


class InstanceUpdate(WireModel):
    """``PUT /api/v0/instances/update_template/{id}/``: re-merge from a template and/or values."""

    what = "update-instance"
    id: Id | None = None
    template_id: Id | None = None
    template_hash_id: HashId | None = None
    image: Text(500) | None = None
    args: Annotated[list[str] | str | None, BeforeValidator(_args)] = None
    env: Env = None
    onstart: Text() | None = None

    _launch: LaunchRequest | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _as_launch(self) -> InstanceUpdate:
        """Checked as a launch request here, at the edge (the env parsed, args split)."""
        if isinstance(self.env, str) and self.env.lstrip().startswith("{"):
            raise InvalidInput('env must be a JSON object such as {"VAR": "value"}, not a string')
        self._launch = parse(LaunchRequest, self.model_dump(include=self.model_fields_set - {"id"}))
        return self

    def launch(self) -> LaunchRequest:
        """The update's values as a launch request."""
        assert self._launch is not None
        return self._launch


def _state(value: Any) -> Any:
    if value not in (None, "running", "stopped"):
        raise InvalidInput(f'state must be "running" or "stopped", not {show(value)}')
    return value


State = Annotated[Literal["running", "stopped"] | None, BeforeValidator(_state)]


class InstanceEdit(WireModel):
    """``PUT /api/v0/instances/{id}/``: start/stop (``state``) and/or ``label``."""

    what = "instance edit"
    state: State = None
    label: Text(MAX_LABEL) | None = None
    client_id: ClientId = None

    @model_validator(mode="before")
    @classmethod
    def _state_or_label(cls, data: Any) -> Any:
        if isinstance(data, dict) and not ({"state", "label"} & set(data)):
            unknown = sorted(set(map(str, data)) - {"client_id"})
            raise InvalidInput(
                'send {"state": "running"|"stopped"} to start or stop, or {"label": "text"} to label'
                + (f" (unknown field(s): {', '.join(unknown)})" if unknown else "")
            )
        return data


class BulkState(WireModel):
    """``PUT /api/v0/instances/``: start or stop several instances."""

    what = "start/stop instances"
    state: State = None
    ids: IdList(MAX_BULK, what="instance ids") = None  # type: ignore[assignment]
    client_id: ClientId = None

    @model_validator(mode="after")
    def _complete(self) -> BulkState:
        if not self.ids:
            raise InvalidInput("ids must be a non-empty list of instance ids, e.g. [12, 13]")
        if self.state is None:
            raise InvalidInput('state must be "running" or "stopped", not None')
        return self


class BulkDestroy(WireModel):
    """``DELETE /api/v0/instances/``: destroy several instances."""

    what = "destroy instances"
    instance_ids: IdList(MAX_BULK, what="instance ids") = None  # type: ignore[assignment]
    client_id: ClientId = None

    @model_validator(mode="after")
    def _complete(self) -> BulkDestroy:
        if not self.instance_ids:
            raise InvalidInput("instance_ids must be a non-empty list of instance ids, e.g. [12, 13]")
        return self


class BidChange(WireModel):
    """``PUT /api/v0/instances/bid_price/{id}/``."""

    what = "change-bid"
    client_id: ClientId = None
    price: PositiveNumber("a bid in $/hour") | None = None

    @model_validator(mode="after")
    def _needs_price(self) -> BidChange:
        if self.price is None:
            raise InvalidInput(
                "give the new bid: price in $/hour for the whole instance (change bid ID --price 0.35)"
            )
        return self


MAX_TAIL = 100_000


def _tail(value: Any) -> Any:
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput(f"tail must be a number of lines, not {show(value)}")
    text = str(value).strip()
    if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 12:
        raise InvalidInput(f"tail must be a number of lines, not {show(value)}")
    tail = int(text)
    if tail < 0:
        raise InvalidInput("tail must be 0 or more lines")
    if tail > MAX_TAIL:
        raise InvalidInput(f"tail must be at most {MAX_TAIL} lines")
    return tail or None


class LogsRequest(WireModel):
    """``PUT /api/v0/instances/request_logs/{id}/``."""

    what = "logs"
    tail: Annotated[int | str | None, BeforeValidator(_tail),
                    Field(description="the last N lines (a number or numeric string)")] = None
    filter: Annotated[str | None, BeforeValidator(
        lambda v: v if v is None or isinstance(v, str) and len(v) <= 1000 else _bad_filter()),
        WithJsonSchema({"anyOf": [{"type": "string", "maxLength": 1000}, {"type": "null"}],
                        "description": "only lines containing this text"})] = None
    daemon_logs: Annotated[bool | str | None, Field(description='"true": the daemon log')] = None

    @property
    def daemon(self) -> bool:
        return str(self.daemon_logs).lower() in ("true", "1")


def _bad_filter() -> Any:
    raise InvalidInput("filter must be a string of at most 1000 characters: only lines containing "
                       "it are returned")


# -- lists ---------------------------------------------------------------------------------------
DEFAULT_PAGE = 25
MAX_PAGE = 1000
MAX_OFFSET = 10**9


@dataclass(frozen=True)
class InstanceListQuery:
    """``GET /api/v1/instances/`` arguments, checked: filters (plus the "null in a list" terms of
    the official CLI's ``--label '' x``), order, page size, page start and columns."""

    query: dict[str, dict[str, Any]]
    null_terms: list[tuple[str, str, list[Any]]]
    order: list[tuple[str, str]]
    limit: int
    offset: int
    cols: list[str] | None

    @classmethod
    def parse(cls, filters: Any = None, order: Any = None, limit: Any = None, after_token: Any = None,
              cols: Any = None, *, default_limit: int = DEFAULT_PAGE) -> InstanceListQuery:
        cleaned, null_terms = _null_terms({} if filters is None else filters)
        return cls(
            query=normalize_query(cleaned, INSTANCE_FIELDS),
            null_terms=null_terms,
            order=_order(order),
            limit=normalize_limit(limit, default_limit, MAX_PAGE),
            offset=_offset(after_token),
            cols=_select_cols(cols),
        )


def _null_terms(filters: Any) -> tuple[Any, list[tuple[str, str, list[Any]]]]:
    """``{"label": {"in": [null, "x"]}}`` (the official CLI's ``--label '' x``): in/notin lists
    holding null are taken out as ``(field, op, non-null values)`` terms (``label IS NULL OR
    label IN ('x')``, or its negation); the rest of the query goes through the normal checks."""
    if not isinstance(filters, dict):
        return filters, []
    cleaned: dict[str, Any] = {}
    terms: list[tuple[str, str, list[Any]]] = []
    for name, ops in filters.items():
        if not isinstance(ops, dict) or name not in INSTANCE_FIELDS.fields:
            cleaned[name] = ops
            continue
        ops = dict(ops)
        for op in ("in", "notin"):
            values = ops.get(op)
            if isinstance(values, list) and None in values:
                del ops[op]
                bounded_list(values, f"{name} {op}")
                rest = normalize_query({name: {"in": [v for v in values if v is not None]}},
                                       INSTANCE_FIELDS)[name]["in"]
                terms.append((name, op, list(rest)))  # type: ignore[arg-type]
        if ops:
            cleaned[name] = ops
    return cleaned, terms


def _order(order: Any) -> list[tuple[str, str]]:
    """order_by in the v1 form ``[{"col": "start_date", "dir": "desc"}]`` (or ``[[c, d]]``)."""
    if order in (None, [], ""):
        return [("id", "asc")]
    if isinstance(order, list):
        bounded_list(order, "order_by", 20)
        if all(isinstance(o, dict) for o in order):
            order = [[o.get("col"), o.get("dir", "asc")] for o in order]
    return normalize_order(order, INSTANCE_FIELDS) or [("id", "asc")]


def _offset(token: Any) -> int:
    if token in (None, ""):
        return 0
    text = str(token)
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) > MAX_OFFSET:
        raise InvalidInput(f"after_token {show(token)} is not a token this server gave (use next_token)",
                           "invalid_token")
    return int(text)


def _select_cols(cols: Any) -> list[str] | None:
    if cols in (None, "*") or cols == ["*"]:
        return None
    if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
        raise InvalidInput('select_cols must be a JSON list of field names, e.g. ["id","actual_status"]')
    bounded_list(cols, "select_cols", 200)
    # The official CLI asks for columns we may not have (e.g. gpu_temp); those come back null,
    # and "id" is always included so that rows stay identifiable.
    return ["id", *[c for c in cols if c != "id"]]


# -- answers -------------------------------------------------------------------------------------
class PortBinding(BaseModel):
    HostIp: str
    HostPort: str


class VolumeMount(BaseModel):
    id: int
    name: str | None = None
    mount_path: str | None = None
    avail_space: float
    total_space: float


class InstanceRow(BaseModel):
    """An instance as the official client reads it (VAST-WIRE §6.3, §6.4); ``select_cols`` may
    ask for fewer fields."""

    model_config = ConfigDict(extra="allow")
    id: int
    machine_id: int | None = None
    num_gpus: int | None = None
    gpu_name: str | None = None
    actual_status: str | None = None
    intended_status: str | None = None
    cur_state: str | None = None
    status_msg: str | None = None
    label: str | None = None
    image_uuid: str | None = None
    image_runtype: str | None = None
    env: str | None = None
    extra_env: list[list[str]] | None = None
    onstart: str | None = None
    args: list[str] | None = None
    extra_filters: dict[str, Any] | None = None
    ports: dict[str, list[PortBinding]] | None = None
    public_ipaddr: str | None = None
    ssh_host: str | None = None
    ssh_port: int | None = None
    jupyter_token: str | None = Field(None, description="jupyter runtypes: the token Jupyter asks for")
    jupyter_url: str | None = Field(None, description="jupyter runtypes: Jupyter's address, token "
                                    "included, while the instance runs")
    disk_space: float | None = None
    dph_total: float | None = None
    is_bid: bool | None = None
    bid_price: float | None = None
    start_date: float | None = None
    template_id: int | None = None
    template_hash_id: str | None = None
    template_name: str | None = None
    volume_info: list[VolumeMount] | None = None


class InstanceList(BaseModel):
    success: bool
    instances: list[InstanceRow]
    next_token: str | None
    total_instances: int
    label_counts: dict[str, int]


class InstanceListV0(BaseModel):
    success: bool
    instances: list[InstanceRow]


class InstanceShow(BaseModel):
    success: bool
    instances: InstanceRow | None


class InstanceFilter(BaseModel):
    actual_status: str
    verification: str
    gpu_name: str


class InstanceFilters(BaseModel):
    success: bool
    filters: list[InstanceFilter]


class Created(BaseModel):
    success: bool
    new_contract: int
    msg: str


class DryRun(BaseModel):
    success: bool
    dry_run: bool
    launch: dict[str, Any]
    msg: str


class BulkError(BaseModel):
    id: int
    error: str
    msg: str


class BulkCreated(BaseModel):
    success: bool
    new_contracts: list[int]
    errors: list[BulkError]
    msg: str


class Updated(BaseModel):
    success: bool
    updated_instance: InstanceRow | None
    msg: str


class LogsReady(BaseModel):
    success: bool
    result_url: str
    msg: str
