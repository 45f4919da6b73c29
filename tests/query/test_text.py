"""The text form: byte-for-byte the official client's wire dicts on valid input, errors elsewhere."""

from __future__ import annotations

import copy
import json

import pytest
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
    TEMPLATE_FIELDS,
    VOLUME_FIELDS,
    format_query,
    normalize_query,
    parse_order,
    parse_query,
)
from gpuyard.query.text import OPERATORS, describe_query, split_query

OFFER_DEFAULTS = {"verified": {"eq": True}, "external": {"eq": False}, "rentable": {"eq": True}}
VOLUME_DEFAULTS = {"verified": {"eq": True}, "external": {"eq": False}, "disk_space": {"gte": 1}}


def wire(value: object) -> str:
    """The JSON the client puts on the wire (key order included)."""
    return json.dumps(value, separators=(",", ":"))


def official_template(text: str) -> dict:
    return fix_date_fields(vast_parse(text, {}, templates_fields),
                           ["created_at", "recent_create_date"])


def official_offer(text: str, defaults: dict | None = None) -> dict:
    return vast_parse(text, copy.deepcopy(defaults or {}), offers_fields, offers_alias,
                      offers_mult)


def official_volume(text: str, defaults: dict | None = None) -> dict:
    return vast_parse(text, copy.deepcopy(defaults or {}), vol_offers_fields, {}, offers_mult)


# --- captured examples (VAST-WIRE §3.1, §4.1, §4.2, §4.3, §7) ---------------------------------

def test_template_search_capture_3_1() -> None:
    text = ("count_created > 100 creator_id in [38382,48982] name=my_tpl recommended=true "
            "created_at>01/02/2024 private=None id!=5")
    captured = (
        '{"count_created":{"gt":"100"},"creator_id":{"in":["38382","48982"]},"name":{"eq":"my tpl"},'
        '"recommended":{"eq":true},"created_at":{"gt":1704153600.0},"private":{"eq":null},'
        '"id":{"neq":"5"}}'
    )
    assert wire(parse_query(text, TEMPLATE_FIELDS)) == captured
    assert wire(official_template(text)) == captured


def test_template_search_doc_examples() -> None:
    assert wire(parse_query("count_created > 100 creator_id in [38382,48982]", TEMPLATE_FIELDS)) == (
        '{"count_created":{"gt":"100"},"creator_id":{"in":["38382","48982"]}}'
    )
    text = "recommended == True use_ssh == True"
    assert parse_query(text, TEMPLATE_FIELDS) == {"recommended": {"eq": True},
                                                 "use_ssh": {"eq": True}}
    assert parse_query(text, TEMPLATE_FIELDS) == official_template(text)


@pytest.mark.parametrize("text", [None, "", "   "])
def test_no_query_is_empty_filter(text: str | None) -> None:
    assert parse_query(text, TEMPLATE_FIELDS) == {}


def test_offer_search_capture_4_1() -> None:
    text = ("reliability > 0.98 num_gpus=1 gpu_name=RTX_3090 cpu_ram>=16 gpu_ram>10 duration>2 "
            "cuda_vers>=12.1 driver_version >= 535.86.05 dph<0.5 geolocation in [TW,SE] "
            'gpu_name notin ["RTX 4090", "RTX 3090"] verified=any')
    captured = (
        '{"external":{"eq":false},"rentable":{"eq":true},"reliability":{"gt":"0.98"},'
        '"num_gpus":{"eq":"1"},"gpu_name":{"eq":"RTX 3090","notin":["RTX 4090","RTX 3090"]},'
        '"cpu_ram":{"gte":16000.0},"gpu_ram":{"gt":10000.0},"duration":{"gt":172800.0},'
        '"cuda_max_good":{"gte":"12.1"},"driver_version":{"gte":535086005},'
        '"dph_total":{"lt":"0.5"},"geolocation":{"in":["TW","SE"]}}'
    )
    assert wire(parse_query(text, OFFER_FIELDS, OFFER_DEFAULTS)) == captured
    assert wire(official_offer(text, OFFER_DEFAULTS)) == captured
    order = parse_order("num_gpus-,dph+,score", OFFER_FIELDS)
    assert wire(order) == '[["num_gpus","desc"],["dph_total","asc"],["score","asc"]]'


def test_offer_search_new_capture_4_2() -> None:
    result = parse_query("num_gpus=2", OFFER_FIELDS, OFFER_DEFAULTS)
    assert wire(result) == (
        '{"verified":{"eq":true},"external":{"eq":false},"rentable":{"eq":true},'
        '"num_gpus":{"eq":"2"}}'
    )
    assert parse_order("score-", OFFER_FIELDS) == [["score", "desc"]]


def test_launch_capture_4_3_disk_space_stays_a_string() -> None:
    defaults = {**OFFER_DEFAULTS, "rented": {"eq": False}}
    text = "num_gpus=1 gpu_name=RTX_3090 disk_space>=16.0"
    result = parse_query(text, OFFER_FIELDS, defaults)
    assert result["disk_space"] == {"gte": "16.0"}
    assert result["gpu_name"] == {"eq": "RTX 3090"}
    assert wire(result) == wire(official_offer(text, defaults))


def test_volume_search_capture_7_cli_merges_defaults() -> None:
    text = "disk_space>50 inet_up>500 cuda_vers>=12 duration>1"
    captured = (
        '{"verified":{"eq":true},"external":{"eq":false},"disk_space":{"gte":1,"gt":"50"},'
        '"inet_up":{"gt":"500"},"cuda_vers":{"gte":"12"},"duration":{"gt":86400.0}}'
    )
    assert wire(parse_query(text, VOLUME_FIELDS, VOLUME_DEFAULTS)) == captured
    assert wire(official_volume(text, VOLUME_DEFAULTS)) == captured
    order = parse_order("storage_cost,disk_space-", VOLUME_FIELDS)
    assert order == [["storage_cost", "asc"], ["disk_space", "desc"]]


def test_volume_search_sdk_form_has_no_defaults() -> None:
    assert parse_query("disk_space>50", VOLUME_FIELDS) == {"disk_space": {"gt": "50"}}


def test_defaults_are_copied_not_mutated() -> None:
    defaults = copy.deepcopy(OFFER_DEFAULTS)
    result = parse_query("verified=false num_gpus=1", OFFER_FIELDS, defaults)
    assert result["verified"] == {"eq": False}
    assert defaults == OFFER_DEFAULTS
    result["external"]["eq"] = "changed"
    assert defaults["external"] == {"eq": False}


def test_argv_list_is_joined_with_spaces() -> None:
    argv = ["num_gpus", ">=", "2", "gpu_name=RTX_4090"]
    assert parse_query(argv, OFFER_FIELDS) == {"num_gpus": {"gte": "2"},
                                               "gpu_name": {"eq": "RTX 4090"}}


# --- operators ---------------------------------------------------------------------------------

@pytest.mark.parametrize("spelling,key", sorted(OPERATORS.items()))
def test_every_operator_spelling(spelling: str, key: str) -> None:
    value = "[1,2]" if key in ("in", "notin") else "2"
    expected = ["1", "2"] if key in ("in", "notin") else "2"
    texts = [f"num_gpus {spelling} {value}"]
    if not spelling[0].isalpha():
        texts += [f"num_gpus{spelling}{value}", f"num_gpus {spelling}{value}",
                  f"num_gpus{spelling} {value}"]
    for text in texts:
        assert parse_query(text, OFFER_FIELDS) == {"num_gpus": {key: expected}}, text
        assert parse_query(text, OFFER_FIELDS) == official_offer(text), text


def test_several_ops_on_one_field_merge_and_last_wins() -> None:
    text = "num_gpus>=2 num_gpus<=8 num_gpus>=4"
    assert wire(parse_query(text, OFFER_FIELDS)) == '{"num_gpus":{"gte":"4","lte":"8"}}'
    assert parse_query(text, OFFER_FIELDS) == official_offer(text)


# --- values ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text,expected",
    [
        ("geolocation in [TW,SE]", ["TW", "SE"]),
        ("geolocation in TW,SE", ["TW", "SE"]),
        ("geolocation in [TW]", ["TW"]),
        ("geolocation in [TW, SE, ,]", ["TW", "SE"]),
        ("geolocation notin [US_East,CA]", ["US East", "CA"]),
        ("geolocation in ['XV','XZ']", ["'XV'", "'XZ'"]),
        ('geolocation in ["New York", "San Jose"]', ["New York", "San Jose"]),
        ("geolocation in [true,null]", ["true", "null"]),
    ],
)
def test_lists(text: str, expected: list[str]) -> None:
    result = parse_query(text, OFFER_FIELDS)
    assert list(result["geolocation"].values()) == [expected]
    assert result == official_offer(text)


@pytest.mark.parametrize(
    "text,field,expected",
    [
        ('name="my template"', "name", "my template"),
        ('name="my_template"', "name", "my template"),
        ("name=my_template", "name", "my template"),
        ("image=vastai/base_image:cuda_12", "image", "vastai/base image:cuda 12"),
        ("hash_id=abc_def", "hash_id", "abc def"),
        ("name='single'", "name", "'single'"),
        ("name=bracketed,", "name", "bracketed"),
        ("name=[bracketed]", "name", "bracketed"),
        ('name="any"', "name", "any"),
        ("name=TRUE", "name", "TRUE"),
    ],
)
def test_strings_quotes_and_underscores(text: str, field: str, expected: str) -> None:
    assert parse_query(text, TEMPLATE_FIELDS) == {field: {"eq": expected}}
    assert parse_query(text, TEMPLATE_FIELDS) == official_template(text)


@pytest.mark.parametrize(
    "word,value",
    [("true", True), ("True", True), ("false", False), ("False", False), ("None", None),
     ("null", None), ('"true"', True), ("TRUE", "TRUE"), ("1", "1")],
)
def test_boolean_and_null_literals(word: str, value: object) -> None:
    text = f"recommended={word}"
    assert parse_query(text, TEMPLATE_FIELDS) == {"recommended": {"eq": value}}
    assert parse_query(text, TEMPLATE_FIELDS) == official_template(text)


def test_null_means_is_null_and_works_with_neq() -> None:
    assert parse_query("private!=null", TEMPLATE_FIELDS) == {"private": {"neq": None}}


@pytest.mark.parametrize("wildcard", ["any", "*", "?", "[any]"])
def test_wildcard_with_eq_removes_field_and_defaults(wildcard: str) -> None:
    text = f"num_gpus>=2 verified={wildcard} num_gpus={wildcard} rentable=true"
    result = parse_query(text, OFFER_FIELDS, OFFER_DEFAULTS)
    assert result == {"external": {"eq": False}, "rentable": {"eq": True}}
    assert result == official_offer(text, OFFER_DEFAULTS)


def test_clause_after_wildcard_sets_field_again() -> None:
    text = "num_gpus=any num_gpus=4"
    assert parse_query(text, OFFER_FIELDS) == {"num_gpus": {"eq": "4"}}
    assert parse_query(text, OFFER_FIELDS) == official_offer(text)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("created_at>01/02/2024", {"created_at": {"gt": 1704153600.0}}),
        ("created_at>1/2/2024", {"created_at": {"gt": 1704153600.0}}),
        ("created_at>=1704153600", {"created_at": {"gte": 1704153600.0}}),
        ("recent_create_date<1704153600.5", {"recent_create_date": {"lt": 1704153600.5}}),
        ("created_at=null", {"created_at": {"eq": None}}),
    ],
)
def test_dates_become_epoch_seconds(text: str, expected: dict) -> None:
    assert parse_query(text, TEMPLATE_FIELDS) == expected
    assert parse_query(text, TEMPLATE_FIELDS) == official_template(text)


def test_date_list_converts_each_item() -> None:
    result = parse_query("created_at in [01/02/2024,0]", TEMPLATE_FIELDS)
    assert result == {"created_at": {"in": [1704153600.0, 0.0]}}


@pytest.mark.parametrize(
    "text,expected",
    [
        ("driver_version>=535.86.05", {"gte": 535086005}),
        ("driver_version=550.1.2", {"eq": 550001002}),
        ("driver_version=535", {"eq": "535"}),
    ],
)
def test_driver_version(text: str, expected: dict) -> None:
    assert parse_query(text, OFFER_FIELDS) == {"driver_version": expected}
    assert parse_query(text, OFFER_FIELDS) == official_offer(text)


def test_driver_version_list_converts_each_item() -> None:
    result = parse_query("driver_version in [535.86.05,550.54.15]", OFFER_FIELDS)
    assert result == {"driver_version": {"in": [535086005, 550054015]}}


@pytest.mark.parametrize(
    "text,expected",
    [
        ("gpu_ram>=20", {"gpu_ram": {"gte": 20000.0}}),
        ("cpu_ram<0.5", {"cpu_ram": {"lt": 500.0}}),
        ("gpu_total_ram=48", {"gpu_total_ram": {"eq": 48000.0}}),
        ("duration>2", {"duration": {"gt": 172800.0}}),
        ("duration>0.5", {"duration": {"gt": 43200.0}}),
    ],
)
def test_multipliers(text: str, expected: dict) -> None:
    assert parse_query(text, OFFER_FIELDS) == expected
    assert wire(parse_query(text, OFFER_FIELDS)) == wire(official_offer(text))


def test_multiplier_applies_to_list_items() -> None:
    assert parse_query("gpu_ram in [24,48]", OFFER_FIELDS) == {"gpu_ram": {"in": [24000.0, 48000.0]}}


def test_volume_duration_multiplier() -> None:
    assert parse_query("duration>=3", VOLUME_FIELDS) == {"duration": {"gte": 259200.0}}


@pytest.mark.parametrize(
    "alias,field",
    [("cuda_vers", "cuda_max_good"), ("display_active", "gpu_display_active"),
     ("dlperf_usd", "dlperf_per_dphtotal"), ("dph", "dph_total"),
     ("flops_usd", "flops_per_dphtotal")],
)
def test_offer_aliases(alias: str, field: str) -> None:
    value = "true" if field == "gpu_display_active" else "1"
    text = f"{alias}={value}"
    assert list(parse_query(text, OFFER_FIELDS)) == [field]
    assert parse_query(text, OFFER_FIELDS) == official_offer(text)


def test_volumes_have_no_filter_aliases() -> None:
    assert parse_query("cuda_vers>=12", VOLUME_FIELDS) == {"cuda_vers": {"gte": "12"}}
    with pytest.raises(QueryError, match="dph"):
        parse_query("dph<1", VOLUME_FIELDS)


def test_volume_external_is_accepted() -> None:
    assert parse_query("external=true", VOLUME_FIELDS) == {"external": {"eq": True}}


# --- strict errors -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text,clause,words",
    [
        ("num_gpus >> 2", "num_gpus >> 2", ["unknown operator", ">=", "notin"]),
        ("num_gpus=>2", "num_gpus=>2", ["unknown operator"]),
        ("num_gpus=<2", "num_gpus=<2", ["unknown operator"]),
        ("num_gpus<>2", "num_gpus<>2", ["unknown operator"]),
        ("num_gpus!2", "num_gpus!2", ["unknown operator"]),
        ("num_gpus 2", "num_gpus 2", ["no operator"]),
        ("num_gpus IN [1,2]", "num_gpus IN", ["no operator"]),
        ("num_gpus>=", "num_gpus>=", ["no value"]),
        ("num_gpus in []", "num_gpus in []", ["no value"]),
        ("num_gpus in [,]", "num_gpus in [,]", ["no value"]),
        ('gpu_name=""', 'gpu_name=""', ["no value"]),
        ("gpu_nam=RTX_3090", "gpu_nam=RTX_3090", ["unknown field", "gpu_name"]),
        ("score>1", "score>1", ["sort"]),
        ("num_gpus>any", "num_gpus>any", ["wildcard", "="]),
        ("num_gpus!=*", "num_gpus!=*", ["wildcard"]),
        ("gpu_name in [any,RTX_3090]", "gpu_name in [any,RTX_3090]", ["wildcard"]),
        ("gpu_ram>=lots", "gpu_ram>=lots", ["not a number"]),
        ("gpu_ram>=nan", "gpu_ram>=nan", ["not a number"]),
        ("duration>inf", "duration>inf", ["not a number"]),
        ("gpu_ram=null", "gpu_ram=null", ["not a number"]),
        ("num_gpus=two", "num_gpus=two", ["num_gpus", "not a number"]),
        ("num_gpus>1.5", "num_gpus>1.5", ["whole number"]),
        ("num_gpus>null", "num_gpus>null", ["null"]),
        ("verified=yes", "verified=yes", ["not a boolean"]),
        ("reliability>high", "reliability>high", ["not a number"]),
        ("driver_version=535.86", "driver_version=535.86", ["version"]),
        ("driver_version>=a.b.c", "driver_version>=a.b.c", ["version"]),
        ("gpu_name=true", "gpu_name=true", ["not a string"]),
    ],
)
def test_offer_errors_name_the_clause(text: str, clause: str, words: list[str]) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(text, OFFER_FIELDS)
    assert info.value.clause == clause
    assert clause in info.value.msg
    for word in words:
        assert word in info.value.msg
    assert info.value.status == 400


@pytest.mark.parametrize(
    "text,clause,words",
    [
        ("created_at>yesterday", "created_at>yesterday", ["not a date", "MM/DD/YYYY"]),
        ("created_at>13/45/2024", "created_at>13/45/2024", ["not a date"]),
        ("created_at>true", "created_at>true", ["not a date"]),
        ("count_created>lots", "count_created>lots", ["not a number"]),
        ("use_ssh=maybe", "use_ssh=maybe", ["not a boolean"]),
        ("gpu_ram>=20", "gpu_ram>=20", ["unknown field", "count_created"]),
    ],
)
def test_template_errors_name_the_clause(text: str, clause: str, words: list[str]) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(text, TEMPLATE_FIELDS)
    assert info.value.clause == clause
    for word in words:
        assert word in info.value.msg


def test_unknown_field_lists_known_fields_sorted() -> None:
    with pytest.raises(QueryError) as info:
        parse_query("colour=red", TEMPLATE_FIELDS)
    listed = info.value.msg.split("fields: ")[1].split(", ")
    assert listed == sorted(listed)
    assert set(listed) == set(templates_fields)


@pytest.mark.parametrize(
    "text,leftover",
    [
        ("num_gpus=1 , gpu_name=x", ", "),
        ("num_gpus=1 (gpu_name=x)", "("),
        ("num_gpus=1\tx", None),
    ],
)
def test_unconsumed_text_is_an_error(text: str, leftover: str | None) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(text, OFFER_FIELDS)
    if leftover is not None:
        assert info.value.clause == leftover
        assert "unexpected text" in info.value.msg


@pytest.mark.parametrize("text", ['name="a"b', "id in [1,2]x"])
def test_clauses_must_be_separated_by_spaces(text: str) -> None:
    with pytest.raises(QueryError, match="separate clauses with a space"):
        parse_query(text, TEMPLATE_FIELDS)


# --- order ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text,expected",
    [
        ("score-", [["score", "desc"]]),
        ("-score", [["score", "desc"]]),
        ("score+", [["score", "asc"]]),
        ("+score", [["score", "asc"]]),
        ("score", [["score", "asc"]]),
        (" num_gpus- , dph+,, score ", [["num_gpus", "desc"], ["dph_total", "asc"],
                                        ["score", "asc"]]),
        ("cuda_vers-", [["cuda_max_good", "desc"]]),
        ("", []),
    ],
)
def test_parse_order_matches_official(text: str, expected: list) -> None:
    assert parse_order(text, OFFER_FIELDS) == expected
    assert parse_order(text, OFFER_FIELDS) == vast_parse_order(text)


def test_parse_order_none_is_empty() -> None:
    assert parse_order(None, OFFER_FIELDS) == []


def test_volume_order_uses_offer_aliases() -> None:
    assert parse_order("cuda_vers-", VOLUME_FIELDS) == [["cuda_max_good", "desc"]]
    with pytest.raises(QueryError, match="dph_total"):
        parse_order("dph", VOLUME_FIELDS)


@pytest.mark.parametrize("text,clause", [("colour-", "colour-"), ("-dph+", "-dph+"),
                                         ("-", "-")])
def test_parse_order_errors(text: str, clause: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_order(text, OFFER_FIELDS)
    assert info.value.clause == clause


def test_parse_order_accepts_dict_form_list() -> None:
    assert parse_order([["dph", "desc"]], OFFER_FIELDS) == [["dph_total", "desc"]]


# --- rendering back to text ----------------------------------------------------------------------

def test_format_query_round_trips_the_captured_offer_query() -> None:
    query = parse_query(
        "gpu_name=RTX_3090 cpu_ram>=16 duration>2 driver_version>=535.86.05 "
        'geolocation in [TW,SE] gpu_name notin ["RTX 4090"] verified=true',
        OFFER_FIELDS,
    )
    text = format_query(query, OFFER_FIELDS)
    assert "gpu_name=RTX_3090" in text and "cpu_ram>=16 " in text
    assert parse_query(text, OFFER_FIELDS) == query


def test_format_query_writes_stored_template_filters() -> None:
    """What a template made with ``--search_params "gpu_ram>=20 num_gpus=1"`` stores (typed
    values, the official CLI's default filters included) reads as the text that made it."""
    stored = normalize_query(parse_query("gpu_ram>=20 num_gpus=1", OFFER_FIELDS, {
        "verified": {"eq": True}, "external": {"eq": False}, "rentable": {"eq": True}}),
        OFFER_FIELDS)
    assert stored["num_gpus"] == {"eq": 1} and stored["gpu_ram"] == {"gte": 20000.0}
    text = format_query(stored, OFFER_FIELDS)
    assert text == "verified=true external=false rentable=true gpu_ram>=20 num_gpus=1"
    assert normalize_query(parse_query(text, OFFER_FIELDS), OFFER_FIELDS) == stored


@pytest.mark.parametrize(("query", "text"), [
    ({"num_gpus": {"in": [1, 2]}, "dph_total": {"lt": 0.5}}, "num_gpus in [1,2] dph_total<0.5"),
    ({"reliability": {"gte": 1.0}, "cpu_cores": {"neq": None}}, "reliability>=1 cpu_cores!=null"),
    ({"verified": {"in": [True, False]}}, "verified in [true,false]"),
    ({"gpu_total_ram": {"in": [24000.0, 48000.0]}}, "gpu_total_ram in [24,48]"),
    ({"duration": {"gt": 172800.0}, "cpu_ram": {"lte": 500.0}}, "duration>2 cpu_ram<=0.5"),
    ({"driver_version": {"gte": 535086005}}, "driver_version>=535.86.5"),
    ({"driver_version": {"gte": "535.86.05"}}, "driver_version>=535.86.5"),
    ({"gpu_ram": {"gte": "24000"}}, "gpu_ram>=24"),  # wire units, not GB: 24 GB, never 24000 GB
    ({"gpu_name": {"eq": "RTX 4090"}, "geolocation": {"notin": ["US", "Costa Rica"]}},
     "gpu_name=RTX_4090 geolocation notin [US,Costa_Rica]"),
    ({"gpu_name": {"eq": 'say "hi" now'}}, 'gpu_name=say_"hi"_now'),
    ({"gpu_name": {"eq": "[x]"}, "mobo_name": {"in": ["any", "true"]}},
     'gpu_name="[x]" mobo_name in ["any",true]'),
])
def test_format_query_writes_every_kind_of_value(query: dict, text: str) -> None:
    assert format_query(query, OFFER_FIELDS) == text
    assert normalize_query(parse_query(text, OFFER_FIELDS), OFFER_FIELDS) == \
        normalize_query(query, OFFER_FIELDS)


def test_format_query_writes_dates() -> None:
    query = {"created_at": {"gt": 1704153600.0}, "recent_create_date": {"lt": 1704153600.5}}
    text = format_query(query, TEMPLATE_FIELDS)
    assert text == "created_at>01/02/2024 recent_create_date<1704153600.5"
    assert parse_query(text, TEMPLATE_FIELDS) == query


def test_format_query_quotes_wildcard_like_strings() -> None:
    query = {"name": {"eq": "any"}}
    assert format_query(query, TEMPLATE_FIELDS) == 'name="any"'
    assert parse_query('name="any"', TEMPLATE_FIELDS) == query


@pytest.mark.parametrize("value", ["=x", ">1", "!"])
def test_format_query_quotes_strings_that_look_like_operators(value: str) -> None:
    query = {"name": {"eq": value}}
    assert format_query(query, TEMPLATE_FIELDS) == f'name="{value}"'
    assert parse_query(format_query(query, TEMPLATE_FIELDS), TEMPLATE_FIELDS) == query


@pytest.mark.parametrize("query", [
    {"name": {"eq": "snake_case"}},  # every _ reads as a space
    {"name": {"eq": '"quoted"'}},  # surrounding quotes are taken off
    {"name": {"eq": "true"}},  # true, even quoted, is the literal
    {"name": {"in": ["a,b"]}},  # items are split on ,
    {"name": {"in": []}},  # in [] is blank
])
def test_format_query_refuses_what_text_cannot_say(query: dict) -> None:
    with pytest.raises(QueryError, match="cannot be written"):
        format_query(query, TEMPLATE_FIELDS)


def test_split_query_keeps_what_text_can_say_and_hands_back_the_rest() -> None:
    stored = {"gpu_ram": {"gte": 20000.0}, "gpu_name": {"eq": "RTX_4090_Ti", "neq": "x"},
              "num_gpus": {"eq": 1}}
    text, rest = split_query(stored, OFFER_FIELDS)
    assert text == "gpu_ram>=20 num_gpus=1"
    assert rest == {"gpu_name": {"eq": "RTX_4090_Ti", "neq": "x"}}  # the whole field
    assert describe_query(stored, OFFER_FIELDS) == (
        'gpu_ram>=20 num_gpus=1; gpu_name eq "RTX_4090_Ti", gpu_name neq "x"')


def test_importing_the_parser_does_not_import_sqlalchemy() -> None:
    import subprocess
    import sys

    code = "import sys, gpuyard.query; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
