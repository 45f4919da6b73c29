"""The query language shared by template, offer and volume searches.

* text form → wire dict: :func:`parse_query`, :func:`parse_order` (client side, CLI); and back:
  :func:`format_query`, :func:`split_query`, :func:`describe_query` (what the console and CLI show);
* wire dict → checked, typed dict: :func:`normalize_query`, :func:`normalize_order`,
  :func:`normalize_limit` (server side);
* typed dict → SQL: ``gpuyard.query.sql`` (imported explicitly; it is the only module here that
  needs SQLAlchemy, so the CLI can import this package without it).

See docs/query-language.md for the user-facing reference.
"""

from gpuyard.query.fields import (
    OFFER_FIELDS,
    TEMPLATE_FIELDS,
    VOLUME_FIELDS,
    Field,
    FieldSet,
    FieldType,
)
from gpuyard.query.text import describe_query, format_query, parse_order, parse_query, split_query
from gpuyard.query.validate import OPS, normalize_limit, normalize_order, normalize_query

__all__ = [
    "OFFER_FIELDS",
    "OPS",
    "TEMPLATE_FIELDS",
    "VOLUME_FIELDS",
    "Field",
    "FieldSet",
    "FieldType",
    "describe_query",
    "format_query",
    "normalize_limit",
    "normalize_order",
    "normalize_query",
    "parse_order",
    "parse_query",
    "split_query",
]
