"""Field lists of the query language: which names can be searched, their types and aliases.

A :class:`FieldSet` is what a search endpoint accepts. It is pure data plus two lookups:

* :meth:`FieldSet.resolve` for filter names (``gpu_ram>=20``): applies the filter aliases and
  rejects unknown names and sort-only names such as ``score``;
* :meth:`FieldSet.resolve_order` for sort names (``-o dph-``): applies the order aliases and also
  accepts the sort-only names.

Three sets are defined, mirroring the official ``vastai`` 1.9.1 client (VAST-WIRE §5.4–§5.6):
:data:`TEMPLATE_FIELDS`, :data:`OFFER_FIELDS` and :data:`VOLUME_FIELDS`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from gpuyard.errors import QueryError


class FieldType(StrEnum):
    """How a field's values are checked and compared."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STR = "str"
    DATE = "date"  # epoch seconds (float); the text form also accepts MM/DD/YYYY (UTC midnight)


@dataclass(frozen=True)
class Field:
    """One searchable field.

    ``multiplier`` only affects the *text* form: ``gpu_ram>=20`` (GB) is sent as ``20000.0`` (MB),
    ``duration>2`` (days) as ``172800.0`` (seconds). The dict form already carries the product.
    """

    name: str
    type: FieldType
    multiplier: float | None = None


#: Fields whose dotted text value ``X.Y.Z`` is turned into the int ``XXXYYYZZZ`` (VAST-WIRE §5.3.8).
VERSION_FIELDS = frozenset({"driver_version"})


def parse_version(text: str) -> int | None:
    """``"535.86.05"`` → ``535086005``: three dot-separated parts of 1–3 digits, each zero-padded
    to 3 digits and joined. Returns None when ``text`` is not of that form."""
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() and len(p) <= 3 for p in parts):
        return None
    return int("".join(p.zfill(3) for p in parts))


def _frozen(mapping: Mapping[str, object]) -> Mapping[str, object]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: the sets are module constants
class FieldSet:
    """The fields one search accepts.

    ``fields`` maps canonical names to :class:`Field`. ``aliases`` rename filter names before they
    are looked up (``dph`` → ``dph_total``). ``order_aliases`` do the same for sort names and default
    to ``aliases``. Names in ``order_only`` (``score``) may be sorted on but not filtered.
    """

    name: str
    fields: Mapping[str, Field]
    aliases: Mapping[str, str] = field(default_factory=dict)
    order_aliases: Mapping[str, str] | None = None
    order_only: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", _frozen(self.fields))
        object.__setattr__(self, "aliases", _frozen(self.aliases))
        order_aliases = self.aliases if self.order_aliases is None else self.order_aliases
        object.__setattr__(self, "order_aliases", _frozen(order_aliases))
        object.__setattr__(self, "order_only", frozenset(self.order_only))
        missing = (set(self.order_only) | set(self.aliases.values())) - set(self.fields)
        if missing:
            raise ValueError(f"{self.name}: names not in fields: {sorted(missing)}")

    @property
    def filter_names(self) -> list[str]:
        """Sorted names usable in a filter (sort-only names excluded)."""
        return sorted(n for n in self.fields if n not in self.order_only)

    @property
    def date_fields(self) -> frozenset[str]:
        """Names of the DATE fields (their values are epoch seconds)."""
        return frozenset(n for n, f in self.fields.items() if f.type is FieldType.DATE)

    def resolve(self, name: str, clause: str | None = None) -> Field:
        """The filter field called ``name`` (aliases applied), or QueryError naming the clause."""
        canonical = self.aliases.get(name, name)
        fld = self.fields.get(canonical)
        where = f" in clause {clause!r}" if clause else ""
        if fld is not None and canonical not in self.order_only:
            return fld
        if fld is not None:
            msg = f"{canonical!r}{where} can only be used to sort results, not to filter them"
        else:
            msg = f"unknown field {name!r}{where}{self._hint(name, self.filter_names)}"
        raise QueryError(f"{msg}; searchable {self.name} fields: {', '.join(self.filter_names)}",
                         clause=clause or name)

    def resolve_order(self, name: str, clause: str | None = None) -> Field:
        """The sort field called ``name`` (order aliases applied), or QueryError."""
        canonical = self.order_aliases.get(name, name)
        fld = self.fields.get(canonical)
        if fld is not None:
            return fld
        names = sorted(self.fields)
        alias = f" (alias of {canonical!r})" if canonical != name else ""
        where = f" in order {clause!r}" if clause and clause != name else ""
        raise QueryError(
            f"cannot sort {self.name}s by unknown field {name!r}{alias}{where}"
            f"{self._hint(name, names)}; sortable fields: {', '.join(names)}",
            clause=clause or name,
        )

    @staticmethod
    def _hint(name: str, names: list[str]) -> str:
        close = difflib.get_close_matches(name, names, n=3)
        return f" (did you mean {' or '.join(close)}?)" if close else ""


def _make(
    name: str,
    types: Mapping[str, FieldType],
    multipliers: Mapping[str, float] | None = None,
    aliases: Mapping[str, str] | None = None,
    order_aliases: Mapping[str, str] | None = None,
    order_only: frozenset[str] = frozenset(),
) -> FieldSet:
    mult = multipliers or {}
    fields = {n: Field(n, t, mult.get(n)) for n, t in types.items()}
    return FieldSet(name, fields, aliases or {}, order_aliases, order_only)


def _typed(**groups: str) -> dict[str, FieldType]:
    """``_typed(int="a b", str="c")`` → ``{"a": INT, "b": INT, "c": STR}``."""
    return {n: FieldType(t) for t, names in groups.items() for n in names.split()}


TEMPLATE_FIELDS = _make(
    "template",
    _typed(
        int="creator_id count_created id",
        date="created_at recent_create_date",
        str="default_tag docker_login_repo hash_id image name tag",
        bool="jup_direct private recommended ssh_direct use_ssh",
        float="recommended_disk_space",
    ),
)

#: GB → MB for memory, days → seconds for duration (the text form only).
MULTIPLIERS: Mapping[str, float] = {
    "cpu_ram": 1000.0, "gpu_ram": 1000.0, "gpu_total_ram": 1000.0, "duration": 86400.0,
}

OFFER_ALIASES: Mapping[str, str] = {
    "cuda_vers": "cuda_max_good",
    "display_active": "gpu_display_active",
    "dlperf_usd": "dlperf_per_dphtotal",
    "dph": "dph_total",
    "flops_usd": "flops_per_dphtotal",
}

_OFFER_STR = ("gpu_name geolocation cpu_arch gpu_arch mobo_name verification ubuntu_version")
_OFFER_BOOL = ("external rentable rented verified static_ip vms_enabled datacenter "
               "gpu_display_active has_avx")
_OFFER_INT = ("id machine_id host_id num_gpus cpu_cores direct_port_count cluster_id pci_gen "
              "compute_cap driver_version")
_OFFER_FLOAT = (
    "bw_nvlink cpu_cores_effective cpu_ghz cpu_ram cuda_max_good disk_bw disk_space dlperf "
    "dlperf_per_dphtotal dph_total duration flops_per_dphtotal gpu_frac gpu_max_power gpu_max_temp "
    "gpu_mem_bw gpu_ram gpu_total_ram inet_down inet_down_cost inet_up inet_up_cost min_bid pcie_bw "
    "reliability storage_cost total_flops"
)


OFFER_FIELDS = _make(
    "offer",
    {
        **_typed(str=_OFFER_STR, bool=_OFFER_BOOL, int=_OFFER_INT, float=_OFFER_FLOAT),
        "score": FieldType.FLOAT,
    },
    MULTIPLIERS,
    aliases=OFFER_ALIASES,
    order_only=frozenset({"score"}),
)

VOLUME_FIELDS = _make(
    "volume",
    {
        **_typed(
            str="cpu_arch geolocation gpu_arch ubuntu_version",
            bool="datacenter external has_avx static_ip verified",
            int="cluster_id driver_version host_id id machine_id pci_gen",
            float=(
                "cuda_vers disk_bw disk_space duration inet_down inet_up nw_disk_avg_bw "
                "nw_disk_max_bw nw_disk_min_bw pcie_bw reliability storage_cost total_flops"
            ),
        ),
        # Sort-only: the official client's -o maps cuda_vers to cuda_max_good even for volumes.
        "score": FieldType.FLOAT,
        "cuda_max_good": FieldType.FLOAT,
    },
    MULTIPLIERS,
    aliases={},
    order_aliases=OFFER_ALIASES,
    order_only=frozenset({"score", "cuda_max_good"}),
)

#: Instance lists (``GET /api/v1/instances/`` select_filters and order_by). Not a list the official
#: client knows; these are the instance row fields worth filtering and sorting on.
INSTANCE_FIELDS = _make(
    "instance",
    _typed(
        int="id machine_id host_id num_gpus template_id volume_id",
        str=(
            "actual_status intended_status cur_state label gpu_name image_uuid template_hash_id "
            "template_name geolocation verification image_runtype status_msg"
        ),
        bool="is_bid",
        float="dph_total dph_base bid_price disk_space gpu_ram cpu_ram",
        date="start_date",
    ),
    {"gpu_ram": 1000.0, "cpu_ram": 1000.0},
)

__all__ = [
    "FieldType", "Field", "FieldSet", "TEMPLATE_FIELDS", "OFFER_FIELDS", "VOLUME_FIELDS",
    "INSTANCE_FIELDS",
    "OFFER_ALIASES", "MULTIPLIERS", "VERSION_FIELDS", "parse_version",
]
