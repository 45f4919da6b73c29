"""/openapi.json describes the API: request bodies with their fields, query arguments with
their JSON schemas, the Bearer scheme, and our error answers (never FastAPI's 422)."""

from __future__ import annotations

import httpx


def doc(live_server) -> dict:
    r = httpx.get(f"{live_server}/openapi.json")
    assert r.status_code == 200
    return r.json()


def body_schema(d: dict, path: str, method: str) -> dict:
    ref = d["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    ref = next(s for s in ref.get("anyOf", [ref]) if "$ref" in s)["$ref"]
    return d["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_request_bodies_list_their_fields(live_server):
    d = doc(live_server)
    template = body_schema(d, "/api/v0/template", "post")["properties"]
    assert {"image", "env", "onstart", "extra_filters", "runtype", "recommended_disk_space"} <= set(template)
    launch = body_schema(d, "/api/v0/asks/{ask_id}", "put")["properties"]
    assert {"template_hash_id", "env", "disk", "price", "image", "volume_info", "label"} <= set(launch)
    offers = body_schema(d, "/api/v0/bundles", "post")["properties"]
    assert {"order", "type", "limit", "gpu_ram", "num_gpus", "dph_total", "verified"} <= set(offers)


def test_query_arguments_are_described(live_server):
    d = doc(live_server)
    params = {p["name"]: p for p in d["paths"]["/api/v0/template"]["get"]["parameters"]}
    filters = params["select_filters"]["content"]["application/json"]["schema"]
    assert {"count_created", "use_ssh", "hash_id", "name"} <= set(filters["properties"])
    assert params["limit"]["schema"]["type"] == "integer"
    listing = {p["name"] for p in d["paths"]["/api/v1/instances"]["get"]["parameters"]}
    assert listing == {"select_filters", "order_by", "limit", "after_token", "select_cols"}


def test_bearer_scheme_and_error_answers_without_422(live_server):
    d = doc(live_server)
    assert d["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": "an API key: `Authorization: Bearer <key>`"}
    create = d["paths"]["/api/v0/template"]["post"]
    assert create["security"] == [{"HTTPBearer": []}]
    for path, item in d["paths"].items():
        for method, op in item.items():
            assert "422" not in op["responses"], (method, path)
    codes = set(create["responses"])
    assert {"200", "400", "401", "403", "404", "409", "413"} <= codes
    error = create["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
    assert d["components"]["schemas"][error.rsplit("/", 1)[1]]["required"] == ["error", "msg"]


def test_docs_page_renders_the_schema(live_server):
    r = httpx.get(f"{live_server}/docs")
    assert r.status_code == 200 and "/openapi.json" in r.text and "swagger" in r.text.lower()
