"""Properties: same dicts as the official client, text round trips, and only QueryError escapes."""

from __future__ import annotations

import copy
import json
import math
import string
from collections.abc import Callable
from datetime import date

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from vastai.api.query import (
    fix_date_fields,
    offers_alias,
    offers_fields,
    offers_mult,
    templates_fields,
    vol_offers_fields,
)
from vastai.api.query import parse_order as vast_parse_order
from vastai.api.query import parse_query as vast_parse

from gpuyard.errors import QueryError
from gpuyard.query import (
    OFFER_FIELDS,
    OPS,
    TEMPLATE_FIELDS,
    VOLUME_FIELDS,
    Field,
    FieldSet,
    FieldType,
    format_query,
    normalize_limit,
    normalize_order,
    normalize_query,
    parse_order,
    parse_query,
)
from gpuyard.query.text import LITERALS, WILDCARDS, split_query

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEFAULTS = {"verified": {"eq": True}, "external": {"eq": False}, "rentable": {"eq": True}}
VOLUME_DEFAULTS = {"verified": {"eq": True}, "external": {"eq": False}, "disk_space": {"gte": 1}}
FIELDSETS = st.sampled_from([TEMPLATE_FIELDS, OFFER_FIELDS, VOLUME_FIELDS])


def official_template(text: str, defaults: dict) -> dict:
    return fix_date_fields(vast_parse(text, copy.deepcopy(defaults), templates_fields),
                           ["created_at", "recent_create_date"])


def official_offer(text: str, defaults: dict) -> dict:
    return vast_parse(text, copy.deepcopy(defaults), offers_fields, offers_alias, offers_mult)


def official_volume(text: str, defaults: dict) -> dict:
    return vast_parse(text, copy.deepcopy(defaults), vol_offers_fields, {}, offers_mult)


# (our field set, the official parser, the names both accept, the defaults the client starts from)
SETUPS: list[tuple[FieldSet, Callable[[str, dict], dict], list[str], dict]] = [
    (TEMPLATE_FIELDS, official_template, sorted(templates_fields), {}),
    (OFFER_FIELDS, official_offer, sorted(offers_fields | set(offers_alias)), DEFAULTS),
    (VOLUME_FIELDS, official_volume, sorted(vol_offers_fields), VOLUME_DEFAULTS),
]

SYMBOLS = {"eq": ["=", "=="], "neq": ["!="], "gt": [">"], "gte": [">="], "lt": ["<"],
           "lte": ["<="]}
WORDS = {"eq": ["eq"], "neq": ["neq", "noteq", "not eq"], "gt": ["gt"], "gte": ["gte"],
         "lt": ["lt"], "lte": ["lte"], "in": ["in"], "notin": ["notin", "not in", "nin"]}


@st.composite
def operator_text(draw: st.DrawFn, op: str) -> str:
    spaces = st.sampled_from(["", " ", "  "])
    if op in SYMBOLS and draw(st.booleans()):
        return draw(spaces) + draw(st.sampled_from(SYMBOLS[op])) + draw(spaces)
    return " " * draw(st.integers(1, 2)) + draw(st.sampled_from(WORDS[op])) + " " + draw(spaces)


SAFE_STR = st.text(alphabet=string.ascii_letters + string.digits + "_-./:", min_size=1,
                   max_size=12).filter(
    lambda s: s.replace("_", " ") not in LITERALS and s not in WILDCARDS
)
NUMBER_TEXT = st.one_of(
    st.integers(-10**6, 10**9).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(repr),
)
BOOL_TEXT = st.sampled_from(["true", "True", "false", "False", "TRUE", "0", "1"])


@st.composite
def version_text(draw: st.DrawFn) -> str:
    parts = [draw(st.integers(1, 999)), draw(st.integers(0, 999)), draw(st.integers(0, 999))]
    return ".".join(str(p).zfill(draw(st.integers(1, 3))) for p in parts)


@st.composite
def date_text(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return str(draw(st.integers(0, 2 * 10**9)))
    day = draw(st.dates(date(1971, 1, 1), date(2100, 12, 31)))
    pad = draw(st.booleans())
    month, dom = (f"{day.month:02}", f"{day.day:02}") if pad else (day.month, day.day)
    return f"{month}/{dom}/{day.year}"


def scalar_text(fld: Field) -> st.SearchStrategy[str]:
    if fld.name == "driver_version":
        return st.one_of(version_text(), st.integers(0, 10**6).map(str))
    if fld.type is FieldType.INT:
        return st.integers(-10**6, 10**9).map(str)
    if fld.type is FieldType.FLOAT:
        return NUMBER_TEXT
    if fld.type is FieldType.BOOL:
        return BOOL_TEXT
    if fld.type is FieldType.DATE:
        return date_text()
    return SAFE_STR


def ops_of(fld: Field) -> list[str]:
    """The operators a field takes: true/false fields are not ordered (docs/query-language.md)."""
    return [o for o in OPS if fld.type is not FieldType.BOOL or o not in ("gt", "gte", "lt", "lte")]


@st.composite
def clause_text(draw: st.DrawFn, fieldset: FieldSet, names: list[str]) -> str:
    """A valid clause both parsers accept, in any spelling the grammar allows."""
    name = draw(st.sampled_from(names))
    fld = fieldset.resolve(name)
    lists_ok = fld.multiplier is None and fld.type is not FieldType.DATE
    op = draw(st.sampled_from([o for o in ops_of(fld) if lists_ok or o not in ("in", "notin")]))
    op_text = draw(operator_text(op))
    if op in ("in", "notin"):
        item = (st.integers(0, 10**6).map(str) if fld.name == "driver_version"
                else scalar_text(fld))
        items = draw(st.lists(item, min_size=1, max_size=4))
        quoted = fld.type is FieldType.STR and draw(st.booleans())
        if quoted:
            items = [f'"{i.replace("_", " ")}"' for i in items]
        body = draw(st.sampled_from([",", ", "])).join(items)
        # quotes and spaces only survive inside brackets
        value = f"[{body}]" if quoted or " " in body or draw(st.booleans()) else body
    elif op == "eq" and draw(st.integers(0, 9)) == 0:
        value = draw(st.sampled_from(["any", "*", "?", "[any]"]))
        op_text = draw(st.sampled_from(["=", "==", " = ", " eq "]))
    elif op in ("eq", "neq") and fld.multiplier is None and draw(st.integers(0, 7)) == 0:
        value = draw(st.sampled_from(["None", "null"]))
    else:
        value = draw(scalar_text(fld))
        if fld.type is FieldType.STR and draw(st.booleans()):
            value = f'"{value.replace("_", " ")}"'
    return f"{name}{op_text}{value}"


@st.composite
def query_case(draw: st.DrawFn) -> tuple[str, int, bool]:
    index = draw(st.integers(0, len(SETUPS) - 1))
    fieldset, _, names, _ = SETUPS[index]
    clauses = draw(st.lists(clause_text(fieldset, names), max_size=6))
    separator = draw(st.sampled_from([" ", "  "]))
    return separator.join(clauses), index, draw(st.booleans())


@FAST
@given(query_case())
def test_same_dict_as_the_official_client(case: tuple[str, int, bool]) -> None:
    text, index, with_defaults = case
    fieldset, official, _, defaults = SETUPS[index]
    defaults = defaults if with_defaults else {}
    ours = parse_query(text, fieldset, defaults)
    assert json.dumps(ours) == json.dumps(official(text, defaults))
    normalize_query(ours, fieldset)  # what we send, our server accepts


@FAST
@given(st.lists(st.sampled_from(["score", "num_gpus", "dph", "dph_total", "cuda_vers", "id",
                                 "gpu_ram"]), max_size=4),
       st.lists(st.sampled_from(["", "-", "+"]), min_size=4, max_size=4), st.booleans())
def test_order_same_as_the_official_client(names: list[str], signs: list[str],
                                           trailing: bool) -> None:
    items = [f"{n}{s}" if trailing else f"{s}{n}" for n, s in zip(names, signs, strict=False)]
    text = ",".join(items)
    assert parse_order(text, OFFER_FIELDS) == vast_parse_order(text)


# --- round trip: dict → text → dict ------------------------------------------------------------

SAFE_WIRE_STR = st.text(alphabet=string.ascii_letters + string.digits + " .-:/=<>!'*?@[],",
                        min_size=1, max_size=12)


def wire_scalar(fld: Field, in_list: bool) -> st.SearchStrategy[object]:
    if fld.multiplier is not None:
        return st.floats(-1e9, 1e9, allow_nan=False).map(lambda x: float(repr(x)) * fld.multiplier)
    if fld.name == "driver_version":
        return st.one_of(st.integers(0, 10**9 - 1), st.integers(0, 10**6).map(str))
    if fld.type is FieldType.INT:
        return st.integers(-10**12, 10**12).map(str)
    if fld.type is FieldType.FLOAT:
        return NUMBER_TEXT
    if fld.type is FieldType.DATE:
        return st.floats(allow_nan=False, allow_infinity=False)
    if fld.type is FieldType.BOOL:
        return BOOL_TEXT if in_list else st.booleans()
    if in_list:
        strings = SAFE_WIRE_STR.filter(lambda s: not any(c in s for c in ",[]"))
    else:
        strings = SAFE_WIRE_STR.filter(lambda s: s not in LITERALS)
    return st.one_of(strings, st.sampled_from(sorted(WILDCARDS)))


@st.composite
def wire_query(draw: st.DrawFn, fieldset: FieldSet) -> dict:
    names = draw(st.lists(st.sampled_from(fieldset.filter_names), max_size=5, unique=True))
    query: dict = {}
    for name in names:
        fld = fieldset.fields[name]
        ops = draw(st.lists(st.sampled_from(ops_of(fld)), min_size=1, max_size=3, unique=True))
        query[name] = {}
        for op in ops:
            if op in ("in", "notin"):
                value = draw(st.lists(wire_scalar(fld, in_list=True), min_size=1, max_size=3))
            elif op in ("eq", "neq") and fld.multiplier is None and draw(st.booleans()):
                value = None
            else:
                value = draw(wire_scalar(fld, in_list=False))
            query[name][op] = value
    return query


@FAST
@given(st.sampled_from([TEMPLATE_FIELDS, OFFER_FIELDS, VOLUME_FIELDS]).flatmap(
    lambda fs: st.tuples(st.just(fs), wire_query(fs))))
def test_format_then_parse_gives_the_same_dict(case: tuple[FieldSet, dict]) -> None:
    fieldset, query = case
    text = format_query(query, fieldset)
    assert json.dumps(parse_query(text, fieldset)) == json.dumps(query)
    normalize_query(query, fieldset)


# --- round trip: every value the parser reads is written back --------------------------------
# Strings with every character the grammar gives a meaning to: _ (a space), quotes, operators,
# wildcards, list brackets and commas, literals. Values the parser refuses are left out by the test.
RICH_STR = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + "_-./:'\"=<>!*?@[],#é ",
            min_size=1, max_size=10),
    st.sampled_from(["any", "*", "?", "true", "None", "null", "TRUE", "_", "__", "a_b", "[x]",
                     '"a"', 'a"b', "=x", ">=1", "!", ",a,", "[", "]"]),
)


def rich_value_text(fld: Field, in_list: bool) -> st.SearchStrategy[str]:
    """A value as someone may type it: plain, quoted, or a number of any form."""
    typed = scalar_text(fld)
    if fld.multiplier is not None:
        typed = NUMBER_TEXT
    if fld.type is FieldType.STR or in_list:
        typed = st.one_of(typed, RICH_STR)
    token = st.one_of(typed, RICH_STR.map(lambda v: f'"{v}"'))
    return token.map(lambda v: v if in_list or " " not in v else v.replace(" ", "_"))


@st.composite
def any_query_text(draw: st.DrawFn, fieldset: FieldSet) -> str:
    clauses = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(fieldset.filter_names + sorted(fieldset.aliases)))
        fld = fieldset.resolve(name)
        op = draw(st.sampled_from(ops_of(fld)))
        op_text = draw(operator_text(op))
        if op in ("in", "notin"):
            items = draw(st.lists(rich_value_text(fld, in_list=True), min_size=1, max_size=3))
            value = "[" + draw(st.sampled_from([",", ", "])).join(items) + "]"
        elif op in ("eq", "neq") and draw(st.integers(0, 7)) == 0:
            value = draw(st.sampled_from(["None", "null", "true", "false", "any"]))
        else:
            value = draw(rich_value_text(fld, in_list=False))
        clauses.append(f"{name}{op_text}{value}")
    return " ".join(clauses)


@FAST
@given(FIELDSETS.flatmap(lambda fs: st.tuples(st.just(fs), any_query_text(fs))))
def test_what_the_parser_reads_is_written_back(case: tuple[FieldSet, str]) -> None:
    """parse → format → parse gives the same dict exactly, and the same typed dict (what
    templates and instances store) formats to text that means the same."""
    fieldset, text = case
    try:
        query = parse_query(text, fieldset)
        typed = normalize_query(query, fieldset)
    except QueryError:
        assume(False)
        raise  # unreachable: assume(False) rejects the example
    assert json.dumps(parse_query(format_query(query, fieldset), fieldset)) == json.dumps(query)
    again = format_query(typed, fieldset)
    assert normalize_query(parse_query(again, fieldset), fieldset) == typed


def typed_scalar(fld: Field, in_list: bool) -> st.SearchStrategy[object]:
    """A value as normalize_query returns it (or a JSON client sends it), of every kind."""
    if fld.multiplier is not None:  # in MB or seconds: what a number of GB or days gives
        m = fld.multiplier
        return st.one_of(st.floats(allow_nan=False, allow_infinity=False).map(
            lambda x: float(repr(x)) * m).filter(math.isfinite),
            st.integers(-10**9, 10**9).map(lambda x: x * m), st.just(-0.0))
    if fld.type is FieldType.INT:
        big = st.integers(-(2**63) + 1, 2**63 - 1)
        if fld.name == "driver_version":
            return st.one_of(big, st.integers(0, 10**9 - 1), version_text())
        return st.one_of(big, st.integers(-5, 5))
    if fld.type is FieldType.FLOAT:
        return st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-10**6, 10**6))
    if fld.type is FieldType.DATE:
        midnights = st.dates(date(1971, 1, 1), date(2100, 12, 31)).map(
            lambda d: float((d - date(1970, 1, 1)).days * 86400))
        return st.one_of(st.floats(allow_nan=False, allow_infinity=False), midnights,
                         st.integers(-10**12, 10**12), date_text())
    if fld.type is FieldType.BOOL:
        return st.one_of(st.booleans(), st.sampled_from(["true", "False", "0", "1", 0, 1]))
    return st.one_of(st.text(alphabet=string.ascii_letters + string.digits + " .-:/=<>!'*?@#é",
                             min_size=1, max_size=12).filter(lambda v: in_list or v not in LITERALS)
                     .filter(lambda v: v.strip() == v if in_list else True),
                     st.integers(-10**6, 10**6))


@st.composite
def typed_query(draw: st.DrawFn, fieldset: FieldSet) -> dict:
    names = draw(st.lists(st.sampled_from(fieldset.filter_names), max_size=5, unique=True))
    query: dict = {}
    for name in names:
        fld = fieldset.fields[name]
        ops = draw(st.lists(st.sampled_from(ops_of(fld)), min_size=1, max_size=3, unique=True))
        query[name] = {}
        for op in ops:
            if op in ("in", "notin"):
                value = draw(st.lists(typed_scalar(fld, in_list=True), min_size=1, max_size=3))
            elif op in ("eq", "neq") and fld.multiplier is None and draw(st.integers(0, 5)) == 0:
                value = None  # the text of a unit-scaled field is a number: gpu_ram=null is an error
            else:
                value = draw(typed_scalar(fld, in_list=False))
            query[name][op] = value
    return query


@FAST
@given(FIELDSETS.flatmap(lambda fs: st.tuples(st.just(fs), typed_query(fs))))
def test_format_writes_typed_values_of_every_kind(case: tuple[FieldSet, dict]) -> None:
    """Numbers, unit-scaled numbers, versions, dates, booleans, null, lists and strings without _
    or quotes: all written, and read back as the same typed query."""
    fieldset, query = case
    typed = normalize_query(query, fieldset)
    for candidate in (query, typed):
        text = format_query(candidate, fieldset)
        assert normalize_query(parse_query(text, fieldset), fieldset) == typed


ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(),
                      st.lists(st.one_of(st.text(), st.integers(), st.floats()), max_size=3))


@FAST
@given(FIELDSETS.flatmap(lambda fs: st.tuples(
    st.just(fs), st.dictionaries(st.sampled_from(fs.filter_names),
                                 st.dictionaries(st.sampled_from(OPS), ANY_VALUE, min_size=1),
                                 max_size=3))))
def test_format_writes_the_same_query_or_says_it_cannot(case: tuple[FieldSet, dict]) -> None:
    """Whatever the value, format_query either writes text meaning the same query, or raises
    QueryError; split_query keeps every field it can write and hands back the others whole."""
    fieldset, query = case
    try:
        typed = normalize_query(query, fieldset)
    except QueryError:
        typed = None
    try:
        text = format_query(query, fieldset)
    except QueryError:
        text = None
    if text is not None and typed is not None:
        assert normalize_query(parse_query(text, fieldset), fieldset) == typed
    written, rest = split_query(query, fieldset)
    assert set(rest) <= set(query)
    if typed is not None:
        kept = {k: v for k, v in query.items() if k not in rest}
        assert normalize_query(parse_query(written, fieldset), fieldset) == \
            normalize_query(kept, fieldset)


# --- only QueryError escapes --------------------------------------------------------------------

FRAGMENTS = st.sampled_from([
    "num_gpus", "gpu_ram", "driver_version", "created_at", "name", "dph", "score", "verified",
    "=", "==", "!=", ">=", "<", "=>", "!", " in ", " not in ", " nin ", " eq ", " ", "  ", "[",
    "]", ",", '"', "'", "any", "*", "?", "_", "1", "-2", "1.2.3", "535.86.05", "0.0.0", "nan",
    "inf", "1e999", "9" * 40, "01/02/2024", "13/40/2024", "true", "None", "null", "\t", "\n",
    "é", "١٢",
])
TEXTS = st.one_of(st.text(), st.lists(FRAGMENTS, max_size=12).map("".join))


@FAST
@given(TEXTS, FIELDSETS)
def test_parse_query_raises_only_query_error(text: str, fieldset: FieldSet) -> None:
    try:
        result = parse_query(text, fieldset)
        normalize_query(result, fieldset)  # the server's own checks (e.g. no order on booleans)
    except QueryError as err:
        assert err.msg and err.status == 400


@FAST
@given(st.one_of(st.text(), st.lists(st.sampled_from(["score", "dph", "-", "+", ",", " ",
                                                        "colour", "cuda_vers"])).map("".join)),
       FIELDSETS)
def test_parse_order_raises_only_query_error(text: str, fieldset: FieldSet) -> None:
    try:
        order = parse_order(text, fieldset)
    except QueryError:
        return
    assert all(direction in ("asc", "desc") for _, direction in order)


JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(2**80), 2**80), st.floats(),
    st.text(), st.sampled_from(["1", "1e3", "true", "01/02/2024", "535.86.05", "nan", "1e999"]),
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
NAMES = st.one_of(st.sampled_from(sorted(OFFER_FIELDS.fields) + ["dph", "created_at", "name"]),
                  st.text(max_size=8))
QUERIES = st.one_of(
    JSON,
    st.dictionaries(NAMES, st.one_of(JSON, st.dictionaries(
        st.one_of(st.sampled_from(OPS), st.text(max_size=5)), JSON, max_size=3)), max_size=4),
)


@FAST
@given(QUERIES, FIELDSETS)
def test_normalize_query_raises_only_query_error(query: object, fieldset: FieldSet) -> None:
    try:
        result = normalize_query(query, fieldset)
    except QueryError as err:
        assert err.msg and err.status == 400
        return
    assert normalize_query(result, fieldset) == result  # normalizing twice changes nothing


@FAST
@given(JSON, FIELDSETS)
def test_normalize_order_and_limit_raise_only_query_error(value: object,
                                                          fieldset: FieldSet) -> None:
    try:
        normalize_order(value, fieldset)
    except QueryError:
        pass
    try:
        limit = normalize_limit(value, default=10, maximum=100)
    except QueryError:
        return
    assert 1 <= limit <= 100
