"""The SQL compiler against a real (in-memory SQLite) table: the right rows, in the right order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    select,
)

from gpuyard.errors import QueryError
from gpuyard.query import (
    OFFER_FIELDS,
    TEMPLATE_FIELDS,
    normalize_order,
    normalize_query,
    parse_order,
    parse_query,
)
from gpuyard.query.sql import compare, compile_order, compile_where

metadata = MetaData()
templates = Table(
    "templates", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String),
    Column("image", String, nullable=True),
    Column("count_created", Integer, nullable=True),
    Column("recommended", Boolean, nullable=True),
    Column("private", Boolean, nullable=True),
    Column("created_at", Float, nullable=True),
)
offers = Table(
    "offers", metadata,
    Column("id", Integer, primary_key=True),
    Column("gpu_name", String),
    Column("num_gpus", Integer),
    Column("gpu_ram", Float),  # MB, as on the wire
    Column("dph_total", Float),
    Column("cuda_max_good", Float, nullable=True),
)

JAN_1, JAN_2, JAN_3 = 1704067200.0, 1704153600.0, 1704240000.0
TEMPLATE_ROWS = [
    {"id": 1, "name": "alpha", "image": "pytorch", "count_created": 9, "recommended": True,
     "private": False, "created_at": JAN_2},
    {"id": 2, "name": "beta", "image": "tensorflow", "count_created": 100, "recommended": False,
     "private": True, "created_at": JAN_1},
    {"id": 3, "name": "gamma", "image": None, "count_created": 150, "recommended": None,
     "private": None, "created_at": JAN_3},
    {"id": 4, "name": "my tpl", "image": "pytorch", "count_created": None, "recommended": True,
     "private": False, "created_at": None},
]
OFFER_ROWS = [
    {"id": 10, "gpu_name": "RTX 3090", "num_gpus": 1, "gpu_ram": 24000.0, "dph_total": 0.3,
     "cuda_max_good": 12.2},
    {"id": 11, "gpu_name": "RTX 4090", "num_gpus": 2, "gpu_ram": 24000.0, "dph_total": 0.4,
     "cuda_max_good": 12.4},
    {"id": 12, "gpu_name": "A100", "num_gpus": 8, "gpu_ram": 80000.0, "dph_total": 9.0,
     "cuda_max_good": None},
    {"id": 13, "gpu_name": "RTX 3090", "num_gpus": 2, "gpu_ram": 16000.0, "dph_total": 0.2,
     "cuda_max_good": 11.8},
]
TEMPLATE_COLUMNS: dict[str, Any] = {name: templates.c[name] for name in templates.c.keys()}
OFFER_COLUMNS: dict[str, Any] = {name: offers.c[name] for name in offers.c.keys()}


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    eng = create_engine("sqlite://")
    metadata.create_all(eng)
    with eng.begin() as conn:
        conn.execute(templates.insert(), TEMPLATE_ROWS)
        conn.execute(offers.insert(), OFFER_ROWS)
    yield eng
    eng.dispose()


def template_ids(engine: Engine, text: str, columns: dict[str, Any] | None = None) -> list[int]:
    query = normalize_query(parse_query(text, TEMPLATE_FIELDS), TEMPLATE_FIELDS)
    where = compile_where(query, columns or TEMPLATE_COLUMNS)
    with engine.connect() as conn:
        return list(conn.scalars(select(templates.c.id).where(*where).order_by(templates.c.id)))


def offer_ids(engine: Engine, text: str, order: str | None = None) -> list[int]:
    query = normalize_query(parse_query(text, OFFER_FIELDS), OFFER_FIELDS)
    sort = normalize_order(parse_order(order, OFFER_FIELDS), OFFER_FIELDS)
    statement = (select(offers.c.id).where(*compile_where(query, OFFER_COLUMNS))
                 .order_by(*compile_order(sort, OFFER_COLUMNS), offers.c.id))
    with engine.connect() as conn:
        return list(conn.scalars(statement))


@pytest.mark.parametrize(
    "text,expected",
    [
        ("", [1, 2, 3, 4]),
        # numeric strings from the wire compare as numbers: 9 is not > 100
        ("count_created > 100", [3]),
        ("count_created >= 9", [1, 2, 3]),
        ("count_created < 100", [1]),
        ("count_created > 1e1", [2, 3]),
        ("count_created=100", [2]),
        ("id!=1", [2, 3, 4]),
        ("count_created in [9,150]", [1, 3]),
        ("creator_id in [38382,48982] id in [1]", []),
        ("name=my_tpl", [4]),
        ('name in ["alpha", gamma]', [1, 3]),
        ("image=pytorch recommended=true", [1, 4]),
        ("recommended=false", [2]),
        ("recommended=TRUE", [1, 4]),
        ("private=None", [3]),
        ("private!=null", [1, 2, 4]),
        ("created_at>01/02/2024", [3]),
        ("created_at>=01/02/2024", [1, 3]),
        ("created_at<1704153600", [2]),
        ("count_created>=9 count_created<=100", [1, 2]),
    ],
)
def test_filters_select_the_right_rows(engine: Engine, text: str, expected: list[int]) -> None:
    columns = {**TEMPLATE_COLUMNS, "creator_id": templates.c.id}
    assert template_ids(engine, text, columns) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        # NULL count_created (row 4) matches no comparison with a value, not even != and notin
        # (SQL's rule, and Vast's) ...
        ("count_created!=9", [2, 3]),
        ("count_created notin [9,100]", [3]),
        ("image!=pytorch", [2]),
        ("count_created>0", [1, 2, 3]),
        ("recommended=true", [1, 4]),
        ("recommended!=true", [2]),
        # ... while eq null / neq null ask for the missing value itself
        ("count_created=null", [4]),
        ("count_created!=null", [1, 2, 3]),
    ],
)
def test_missing_values_match_no_comparison(engine: Engine, text: str, expected: list[int]) -> None:
    assert template_ids(engine, text) == expected


def test_empty_lists(engine: Engine) -> None:
    with engine.connect() as conn:
        for ops, expected in [({"in": []}, []), ({"notin": []}, [1, 2, 3, 4])]:
            where = compile_where({"count_created": ops}, TEMPLATE_COLUMNS)
            statement = select(templates.c.id).where(*where).order_by(templates.c.id)
            assert list(conn.scalars(statement)) == expected


def test_offer_search_with_multipliers_aliases_and_lists(engine: Engine) -> None:
    text = 'gpu_ram>=20 num_gpus in [1,2] gpu_name notin ["RTX 4090"] dph<0.5'
    assert offer_ids(engine, text) == [10]
    assert offer_ids(engine, "gpu_ram<20") == [13]
    assert offer_ids(engine, "cuda_vers>=12") == [10, 11]


@pytest.mark.parametrize(
    "order,expected",
    [
        ("dph", [13, 10, 11, 12]),
        ("dph-", [12, 11, 10, 13]),
        ("num_gpus-,dph", [12, 13, 11, 10]),
        ("gpu_name,num_gpus-", [12, 13, 10, 11]),
        # rows without a value sort last in both directions
        ("cuda_vers", [13, 10, 11, 12]),
        ("cuda_vers-", [11, 10, 13, 12]),
    ],
)
def test_order(engine: Engine, order: str, expected: list[int]) -> None:
    assert offer_ids(engine, "", order) == expected


def test_computed_field_callable(engine: Engine) -> None:
    seen: list[tuple[str, object]] = []

    def popular(op: str, value: object):
        seen.append((op, value))
        return compare(templates.c.count_created * 2, op, value)

    ids = template_ids(engine, "count_created>=200", {**TEMPLATE_COLUMNS,
                                                       "count_created": popular})
    assert ids == [2, 3]
    assert seen == [("gte", 200)]  # called with the typed value, not the wire string


def test_field_without_a_column_is_not_searchable() -> None:
    columns = {k: v for k, v in TEMPLATE_COLUMNS.items() if k != "image"}
    with pytest.raises(QueryError) as info:
        compile_where({"image": {"eq": "x"}}, columns)
    assert "'image' cannot be searched here" in info.value.msg
    assert "count_created" in info.value.msg


def test_order_errors() -> None:
    with pytest.raises(QueryError, match="cannot be sorted on"):
        compile_order([("score", "desc")], OFFER_COLUMNS)
    with pytest.raises(QueryError, match="cannot be sorted by"):
        compile_order([("id", "asc")], {"id": lambda op, value: offers.c.id == value})


def test_compiles_to_sql_not_python_filtering() -> None:
    where = compile_where({"count_created": {"neq": 5, "in": [1, 2]}}, TEMPLATE_COLUMNS)
    sql = [str(c.compile(compile_kwargs={"literal_binds": True})) for c in where]
    assert sql == [
        "templates.count_created != 5",
        "templates.count_created IN (1, 2)",
    ]
