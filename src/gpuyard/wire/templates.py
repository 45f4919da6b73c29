"""Template requests and answers (VAST-WIRE §3).

A template body carries content fields (docs/templates.md), the friendly flags the SDK and our
console send (``ssh``, ``jupyter``, ``direct``, ``jupyter_lab``) and a ``volume_info`` hint.
Every given content field is validated and normalized here, at the edge (the env parsed, the
machine filters normalized …), so the service only merges and hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, Field, model_validator

from gpuyard.envspec import MAX_ENV
from gpuyard.errors import InvalidInput
from gpuyard.query import TEMPLATE_FIELDS, normalize_limit, normalize_order, normalize_query
from gpuyard.services.catalog.template_content import CONTENT_FIELDS, normalize_field
from gpuyard.services.identifiers import looks_like_hash, require_hash, require_id
from gpuyard.wire.base import WireModel
from gpuyard.wire.types import MAX_TEXT, HashId, Id, LooseFlag, PositiveNumber, Text, bounded_list, check_text

FLAG_KEYS = ("ssh", "jupyter", "direct", "jupyter_lab")
BOOKKEEPING = (
    "id", "hash_id", "creator_id", "created_at", "count_created", "recent_create_date",
    "recommended", "default_tag", "volume_info",
)
#: The fields of a template row, in the order searches show them.
ROW_FIELDS = BOOKKEEPING + CONTENT_FIELDS
MAX_MOUNT_PATH = 1000
MAX_VOLUME_NAME = 200


class VolumeHint(WireModel):
    """A template's ``volume_info``: a hint for people reading the template (it mounts
    nothing; docs/volumes.md). The same keys as a launch's volume_info, all optional."""

    what = "volume_info"
    body_name = "volume_info"
    mount_path: Text(MAX_MOUNT_PATH, description="where a volume would be mounted") | None = None
    create_new: LooseFlag | None = None
    volume_id: Id | None = None
    name: Text(MAX_VOLUME_NAME) | None = None
    size: PositiveNumber("a volume size in GB") | None = None


class TemplateFields(WireModel):
    """The content fields of a template, each optional (a null means "not given" or "the
    default", depending on the call)."""

    what = "template"
    name: Text(500, numbers=True, description="display name") | None = None
    image: Text(500, numbers=True, description="Docker image path, e.g. vllm/vllm-openai") | None = None
    tag: Text(200, numbers=True, description="image tag (default latest)") | None = None
    desc: Text(numbers=True) | None = None
    readme: Text(numbers=True) | None = None
    readme_visible: LooseFlag | None = None
    env: Text(MAX_ENV, description='Docker flags: "-e VAR=value -p 8000:8000"') | None = None
    onstart: Text(numbers=True, description="shell script run at start") | None = None
    runtype: Literal["args", "ssh", "jupyter"] | None = None
    args_str: Text(numbers=True) | None = None
    use_ssh: LooseFlag | None = None
    ssh_direct: LooseFlag | None = None
    jup_direct: LooseFlag | None = None
    jupyter_dir: Text(500, numbers=True) | None = None
    use_jupyter_lab: LooseFlag | None = None
    docker_login_repo: Text(500, numbers=True) | None = None
    extra_filters: Annotated[
        dict[str, Any] | str | None,
        Field(description='machine filters: {"gpu_ram": {"gte": 20000}} or "gpu_ram>=20"'),
    ] = None
    recommended_disk_space: Annotated[float | str | None, Field(description="recommended disk in GB")] = None
    href: Text(2000, numbers=True) | None = None
    repo: Text(2000, numbers=True) | None = None
    private: LooseFlag | None = None
    # the friendly flags (SDK, console): turned into runtype/use_ssh/ssh_direct/jup_direct
    ssh: LooseFlag | None = None
    jupyter: LooseFlag | None = None
    direct: LooseFlag | None = None
    jupyter_lab: LooseFlag | None = None
    volume_info: VolumeHint | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any) -> Any:
        """Check every given content field once (env, filters, image …), with the messages of
        docs/templates.md; nulls stay null (what a null means depends on the call)."""
        data = dict(cls.check_body(data))
        for key in CONTENT_FIELDS:
            value = data.get(key)
            if value is not None:
                if isinstance(value, str) and key != "env":  # bound the work before parsing
                    check_text(value, key, MAX_TEXT)  # (env has its own bound and message)
                data[key] = normalize_field(key, value)
        return data

    def content(self) -> dict[str, Any]:
        """The given content fields, normalized (a given null stays None)."""
        return {key: getattr(self, key) for key in CONTENT_FIELDS if key in self.model_fields_set}

    def flags(self) -> dict[str, bool]:
        return {k: bool(getattr(self, k)) for k in FLAG_KEYS if getattr(self, k) is not None}

    def volume_hint(self) -> dict[str, Any] | None:
        if self.volume_info is None:
            return None
        return self.volume_info.model_dump(exclude_none=True)


class TemplateCreate(TemplateFields):
    what = "template"


class TemplateEditByHash(TemplateFields):
    """``PUT /api/v0/template/``: the template's hash_id and only the fields to change."""

    what = "template edit"
    id: Id | None = None
    hash_id: HashId | None = None

    @model_validator(mode="after")
    def _needs_hash(self) -> TemplateEditByHash:
        if self.hash_id is None:
            raise InvalidInput(
                "hash_id is required: the edit call takes the template's hash_id "
                "(searching templates shows it)",
                "hash_id_expected",
            )
        return self


class TemplateEditById(TemplateFields):
    """``PUT /api/v1/template/`` (the official client's edit): id + hash_id and the full
    payload, where a null keeps the current value."""

    what = "template edit"
    id: Id | None = None
    hash_id: HashId | None = None

    @model_validator(mode="after")
    def _needs_id(self) -> TemplateEditById:
        if self.id is None:
            raise InvalidInput(
                "id is required: this call takes the numeric template id and its hash_id"
            )
        return self


class TemplateDelete(WireModel):
    """``DELETE /api/v0/template/``: by hash_id or by template_id."""

    what = "delete-template"
    hash_id: HashId | None = None
    template_id: Id | None = None

    @model_validator(mode="after")
    def _needs_one(self) -> TemplateDelete:
        if self.hash_id is None and self.template_id is None:
            raise InvalidInput(
                "give template_id (the numeric id) or hash_id to say which template to delete",
                "identifier_required",
            )
        return self


# -- search --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TemplateSearch:
    """A template search, checked: the normalized filters, the order, the limit, the columns."""

    query: dict[str, dict[str, Any]]
    order: list[tuple[str, str]]
    limit: int
    cols: list[str] | None = None

    def key(self) -> bytes:
        """The search as bytes, equal for equal searches (a cache key)."""
        return orjson.dumps([self.query, self.order, self.limit, self.cols],
                            option=orjson.OPT_SORT_KEYS)

    @classmethod
    def parse(cls, filters: Any = None, order: Any = None, limit: Any = None, cols: Any = None, *,
              default_limit: int = 1000, max_limit: int = 10000) -> TemplateSearch:
        """From the decoded query arguments (VAST-WIRE §3.1); every problem is a 400."""
        _check_identifier_filters(filters)
        return cls(
            query=normalize_query({} if filters is None else filters, TEMPLATE_FIELDS),
            order=normalize_order(order, TEMPLATE_FIELDS),
            limit=normalize_limit(limit, default_limit, max_limit),
            cols=_select_cols(cols),
        )


def _check_identifier_filters(filters: Any) -> None:
    """A numeric id used as hash_id (or the reverse) gets an error that says so."""
    if not isinstance(filters, dict):
        return
    for field, checker in (("hash_id", require_hash), ("id", require_id)):
        ops = filters.get(field)
        if not isinstance(ops, dict):
            continue
        for op, value in ops.items():
            if op not in ("eq", "neq", "in", "notin") or value is None:
                continue
            for item in value if isinstance(value, list) else [value]:
                if field == "hash_id" and isinstance(item, str) and not looks_like_hash(item):
                    checker(item, f"search filter {field} {op}")
                elif field == "id" and looks_like_hash(item):
                    checker(item, f"search filter {field} {op}")


def _select_cols(cols: Any) -> list[str] | None:
    if cols is None or cols == ["*"] or cols == "*":
        return None
    if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
        raise InvalidInput('select_cols must be a JSON list of field names, e.g. ["id","hash_id"]')
    bounded_list(cols, "select_cols")
    unknown = [c for c in cols if c not in ROW_FIELDS and c != "*"]
    if unknown:
        raise InvalidInput(
            f"select_cols: unknown column(s) {', '.join(unknown)}; columns are "
            f"{', '.join(ROW_FIELDS)}"
        )
    return None if "*" in cols else cols


# -- answers -------------------------------------------------------------------------------------
class TemplateRow(BaseModel):
    """A template as searches and edits show it (its current version plus bookkeeping).
    ``select_cols`` may ask for fewer fields."""

    id: int | None = None
    hash_id: str | None = None
    creator_id: int | None = None
    created_at: float | None = None
    count_created: int | None = None
    recent_create_date: float | None = None
    recommended: bool | None = None
    default_tag: str | None = None
    volume_info: dict[str, Any] | None = None
    name: str | None = None
    image: str | None = None
    tag: str | None = None
    desc: str | None = None
    readme: str | None = None
    readme_visible: bool | None = None
    env: str | None = None
    onstart: str | None = None
    runtype: str | None = None
    args_str: str | None = None
    use_ssh: bool | None = None
    ssh_direct: bool | None = None
    jup_direct: bool | None = None
    jupyter_dir: str | None = None
    use_jupyter_lab: bool | None = None
    docker_login_repo: str | None = None
    extra_filters: dict[str, Any] | None = None
    recommended_disk_space: float | None = None
    href: str | None = None
    repo: str | None = None
    private: bool | None = None


class TemplateAnswer(BaseModel):
    success: bool
    msg: str
    template: TemplateRow


class TemplateList(BaseModel):
    success: bool
    templates: list[TemplateRow]


class TemplateDeleted(BaseModel):
    success: bool
    msg: str
    template_id: int
    hash_id: str


class TemplateVersion(BaseModel):
    template_id: int
    version: int
    hash_id: str
    created_at: float
    current: bool
    content: dict[str, Any]


class TemplateVersions(BaseModel):
    success: bool
    template_id: int
    versions: list[TemplateVersion]


class TemplateContent(BaseModel):
    """The exact content a hash names."""

    model_config = {"extra": "allow"}
    template_id: int
    hash_id: str


class TemplateByHash(BaseModel):
    success: bool
    template: TemplateContent
