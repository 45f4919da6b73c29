"""The dict form a server receives: typed, alias-resolved copies, or errors that name the clause."""

from __future__ import annotations

import json
import math

import pytest

from gpuyard.errors import QueryError
from gpuyard.query import (
    OFFER_FIELDS,
    TEMPLATE_FIELDS,
    VOLUME_FIELDS,
    normalize_limit,
    normalize_order,
    normalize_query,
)

# What the official client sent in the captures of VAST-WIRE §3.1, §4.1 and §7.
TEMPLATE_WIRE = json.loads(
    '{"count_created":{"gt":"100"},"creator_id":{"in":["38382","48982"]},"name":{"eq":"my tpl"},'
    '"recommended":{"eq":true},"created_at":{"gt":1704153600.0},"private":{"eq":null},'
    '"id":{"neq":"5"}}'
)
OFFER_WIRE = json.loads(
    '{"external":{"eq":false},"rentable":{"eq":true},"reliability":{"gt":"0.98"},'
    '"num_gpus":{"eq":"1"},"gpu_name":{"eq":"RTX 3090","notin":["RTX 4090","RTX 3090"]},'
    '"cpu_ram":{"gte":16000.0},"gpu_ram":{"gt":10000.0},"duration":{"gt":172800.0},'
    '"cuda_max_good":{"gte":"12.1"},"driver_version":{"gte":535086005},'
    '"dph_total":{"lt":"0.5"},"geolocation":{"in":["TW","SE"]}}'
)
VOLUME_WIRE = json.loads(
    '{"verified":{"eq":true},"external":{"eq":false},"disk_space":{"gte":1,"gt":"50"},'
    '"inet_up":{"gt":"500"},"cuda_vers":{"gte":"12"},"duration":{"gt":86400.0}}'
)


def error_for(query: object, fieldset=TEMPLATE_FIELDS) -> QueryError:
    with pytest.raises(QueryError) as info:
        normalize_query(query, fieldset)
    return info.value


def test_captured_template_query_is_typed() -> None:
    assert normalize_query(TEMPLATE_WIRE, TEMPLATE_FIELDS) == {
        "count_created": {"gt": 100},
        "creator_id": {"in": [38382, 48982]},
        "name": {"eq": "my tpl"},
        "recommended": {"eq": True},
        "created_at": {"gt": 1704153600.0},
        "private": {"eq": None},
        "id": {"neq": 5},
    }


def test_captured_offer_query_is_typed() -> None:
    result = normalize_query(OFFER_WIRE, OFFER_FIELDS)
    assert result["reliability"] == {"gt": 0.98}
    assert result["num_gpus"] == {"eq": 1}
    assert result["cpu_ram"] == {"gte": 16000.0}  # already MB on the wire: not multiplied again
    assert result["cuda_max_good"] == {"gte": 12.1}
    assert result["driver_version"] == {"gte": 535086005}
    assert result["gpu_name"] == {"eq": "RTX 3090", "notin": ["RTX 4090", "RTX 3090"]}
    assert result["external"] == {"eq": False}


def test_captured_volume_query_is_typed() -> None:
    result = normalize_query(VOLUME_WIRE, VOLUME_FIELDS)
    assert result["disk_space"] == {"gte": 1.0, "gt": 50.0}
    assert result["cuda_vers"] == {"gte": 12.0}


def test_input_is_not_modified() -> None:
    original = json.loads(json.dumps(OFFER_WIRE))
    normalize_query(OFFER_WIRE, OFFER_FIELDS)
    assert original == OFFER_WIRE


@pytest.mark.parametrize("query", [None, {}])
def test_no_filters(query: object) -> None:
    assert normalize_query(query, TEMPLATE_FIELDS) == {}


def test_empty_op_dict_is_dropped() -> None:
    assert normalize_query({"id": {}}, TEMPLATE_FIELDS) == {}


# --- coercion by type -------------------------------------------------------------------------

@pytest.mark.parametrize(
    "value,expected",
    [(100, 100), ("100", 100), ("1e3", 1000), (" 7 ", 7), ("-2", -2), (3.0, 3), ("4.0", 4),
     ("+5", 5)],
)
def test_int_fields(value: object, expected: int) -> None:
    result = normalize_query({"count_created": {"gte": value}}, TEMPLATE_FIELDS)
    assert result == {"count_created": {"gte": expected}}
    assert type(result["count_created"]["gte"]) is int


@pytest.mark.parametrize(
    "value,expected",
    [(0.5, 0.5), ("0.5", 0.5), ("1e3", 1000.0), (2, 2.0), (".25", 0.25), ("10", 10.0)],
)
def test_float_fields(value: object, expected: float) -> None:
    result = normalize_query({"recommended_disk_space": {"lt": value}}, TEMPLATE_FIELDS)
    assert result == {"recommended_disk_space": {"lt": expected}}
    assert type(result["recommended_disk_space"]["lt"]) is float


@pytest.mark.parametrize(
    "value,expected",
    [(True, True), (False, False), ("true", True), ("FALSE", False), ("True", True), (1, True),
     (0, False), ("1", True), ("0", False)],
)
def test_bool_fields(value: object, expected: bool) -> None:
    assert normalize_query({"use_ssh": {"eq": value}}, TEMPLATE_FIELDS) == {
        "use_ssh": {"eq": expected}
    }


@pytest.mark.parametrize("value,expected", [("pytorch", "pytorch"), (3090, "3090"), ("", "")])
def test_str_fields(value: object, expected: str) -> None:
    assert normalize_query({"image": {"eq": value}}, TEMPLATE_FIELDS) == {
        "image": {"eq": expected}
    }


@pytest.mark.parametrize(
    "value,expected",
    [(1704153600, 1704153600.0), ("1704153600.5", 1704153600.5), ("01/02/2024", 1704153600.0),
     ("1/2/2024", 1704153600.0)],
)
def test_date_fields(value: object, expected: float) -> None:
    assert normalize_query({"created_at": {"gte": value}}, TEMPLATE_FIELDS) == {
        "created_at": {"gte": expected}
    }


def test_driver_version_dotted_string_is_accepted() -> None:
    result = normalize_query({"driver_version": {"gte": "535.86.05"}}, OFFER_FIELDS)
    assert result == {"driver_version": {"gte": 535086005}}


def test_null_means_is_null_with_eq_and_neq() -> None:
    query = {"private": {"eq": None}, "recommended": {"neq": None}}
    assert normalize_query(query, TEMPLATE_FIELDS) == query


def test_lists_are_coerced_item_by_item() -> None:
    result = normalize_query({"id": {"in": ["1", 2, "3.0"], "notin": []}}, TEMPLATE_FIELDS)
    assert result == {"id": {"in": [1, 2, 3], "notin": []}}


def test_aliases_resolve_to_canonical_names() -> None:
    result = normalize_query({"dph": {"lt": "0.5"}, "cuda_vers": {"gte": 12}}, OFFER_FIELDS)
    assert result == {"dph_total": {"lt": 0.5}, "cuda_max_good": {"gte": 12.0}}


def test_alias_and_canonical_name_merge() -> None:
    result = normalize_query({"dph": {"lt": 1}, "dph_total": {"gt": 0.1}}, OFFER_FIELDS)
    assert result == {"dph_total": {"lt": 1.0, "gt": 0.1}}


def test_alias_and_canonical_name_conflict() -> None:
    err = error_for({"dph": {"lt": 1}, "dph_total": {"lt": 2}}, OFFER_FIELDS)
    assert "dph_total" in err.msg and "twice" in err.msg


# --- errors -------------------------------------------------------------------------------------

def test_not_a_number_message_names_field_value_and_clause() -> None:
    err = error_for({"num_gpus": {"eq": "abc"}}, OFFER_FIELDS)
    assert err.msg == 'num_gpus: "abc" is not a number (clause num_gpus eq "abc")'
    assert err.clause == 'num_gpus eq "abc"'
    assert err.status == 400


def test_unknown_operator_lists_the_eight_keys() -> None:
    err = error_for({"count_created": {"ge": 1}})
    assert "count_created" in err.msg and '"ge"' in err.msg
    assert "eq, neq, gt, gte, lt, lte, in, notin" in err.msg


def test_unknown_field_lists_known_fields() -> None:
    err = error_for({"colour": {"eq": "red"}})
    assert "'colour'" in err.msg
    assert "count_created, created_at, creator_id" in err.msg


def test_order_only_field_cannot_filter() -> None:
    err = error_for({"score": {"gt": 1}}, OFFER_FIELDS)
    assert "sort" in err.msg


def test_volume_filters_have_no_aliases() -> None:
    err = error_for({"dph": {"lt": 1}}, VOLUME_FIELDS)
    assert "unknown field 'dph'" in err.msg


@pytest.mark.parametrize(
    "query,words",
    [
        ({"count_created": {"gt": True}}, ["count_created", "true", "not a number"]),
        ({"count_created": {"gt": "1.5"}}, ["whole number"]),
        ({"count_created": {"gt": 2**70}}, ["out of range"]),
        ({"count_created": {"gt": "nan"}}, ["not a number"]),
        ({"count_created": {"gt": math.nan}}, ["not a number"]),
        ({"recommended_disk_space": {"gt": math.inf}}, ["not a number"]),
        ({"recommended_disk_space": {"gt": "1e999"}}, ["not a number"]),
        ({"recommended_disk_space": {"gt": 10**400}}, ["out of range"]),
        ({"recommended_disk_space": {"gt": "1_000"}}, ["not a number"]),
        ({"recommended": {"eq": "yes"}}, ["not a boolean"]),
        ({"recommended": {"eq": 2}}, ["not a boolean"]),
        ({"name": {"eq": True}}, ["not a string"]),
        ({"name": {"eq": {"x": 1}}}, ["not a single value"]),
        ({"created_at": {"gt": "yesterday"}}, ["not a date"]),
        ({"created_at": {"gt": False}}, ["not a date"]),
        ({"count_created": {"gt": None}}, ["null", "gt"]),
        ({"count_created": {"in": "1,2"}}, ["in needs a list"]),
        ({"count_created": {"notin": None}}, ["notin needs a list"]),
        ({"count_created": {"eq": [1, 2]}}, ["use in or notin"]),
        ({"count_created": {"in": [1, None]}}, ["null"]),
        ({"count_created": {"in": [[1]]}}, ["not a single value"]),
        ({"count_created": 5}, ["object of operators"]),
        ({"driver_version": {"eq": "1.2"}}, ["version"]),
    ],
)
def test_value_errors(query: dict, words: list[str]) -> None:
    fieldset = OFFER_FIELDS if "driver_version" in query else TEMPLATE_FIELDS
    err = error_for(query, fieldset)
    field = next(iter(query))
    assert err.msg.startswith(f"{field}: ")
    assert f"(clause {field}" in err.msg
    for word in words:
        assert word in err.msg


@pytest.mark.parametrize("query", [[], "num_gpus=1", 5, {1: {"eq": 1}}])
def test_query_must_be_an_object_with_string_keys(query: object) -> None:
    err = error_for(query)
    assert "query must be an object" in err.msg or "field names must be strings" in err.msg


# --- order --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "order,expected",
    [
        (None, []),
        ([], []),
        ([["score", "desc"]], [("score", "desc")]),
        ([["dph", "ASC"], ("num_gpus", "desc")], [("dph_total", "asc"), ("num_gpus", "desc")]),
        ([{"col": "id", "dir": "desc"}], [("id", "desc")]),
        ("num_gpus-,dph", [("num_gpus", "desc"), ("dph_total", "asc")]),
    ],
)
def test_normalize_order(order: object, expected: list) -> None:
    assert normalize_order(order, OFFER_FIELDS) == expected


@pytest.mark.parametrize(
    "order,words",
    [
        ([["colour", "asc"]], ["unknown field 'colour'"]),
        ([["score", "up"]], ['"asc" or "desc"']),
        ([["score"]], ['["field", "asc"|"desc"]']),
        ([{"col": "score"}], ['"col"']),
        ({"col": "score", "dir": "asc"}, ["order must be a list"]),
        ([[1, "asc"]], ["must be a string"]),
    ],
)
def test_normalize_order_errors(order: object, words: list[str]) -> None:
    with pytest.raises(QueryError) as info:
        normalize_order(order, OFFER_FIELDS)
    for word in words:
        assert word in info.value.msg


def test_volume_order_accepts_sort_only_cuda_max_good() -> None:
    assert normalize_order([["cuda_vers", "desc"]], VOLUME_FIELDS) == [("cuda_max_good", "desc")]


# --- limit --------------------------------------------------------------------------------------

@pytest.mark.parametrize("limit,expected", [(None, 50), (1, 1), ("20", 20), (1000, 1000),
                                            (5.0, 5)])
def test_normalize_limit(limit: object, expected: int) -> None:
    assert normalize_limit(limit, default=50, maximum=1000) == expected


@pytest.mark.parametrize("limit", [0, -1, 1001, "lots", True, 2.5, "", [], float("nan")])
def test_normalize_limit_errors_say_the_range(limit: object) -> None:
    with pytest.raises(QueryError) as info:
        normalize_limit(limit, default=50, maximum=1000)
    assert "from 1 to 1000" in info.value.msg
