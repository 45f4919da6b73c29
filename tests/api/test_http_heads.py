"""The HTTP parser (llhttp through uvicorn's httptools protocol) and the bounds on a request's
head (api/serving.py): a long query string gets the app's 414 that explains, a URL too long to
parse a 414 and a head over ``MAX_HEAD`` a 431 (both JSON, the connection closed), a request that
is not HTTP a JSON 400, and the head's bound counts each request apart."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import httpx

from gpuyard.api.edge import MAX_QUERY
from gpuyard.api.serving import MAX_HEAD, MAX_URL


def _raw(base: str, head: bytes, pieces: int = 1) -> bytes:
    """Send ``head`` on a fresh connection (in ``pieces`` writes); everything answered until the
    server closes the connection."""
    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=20) as sock:
        step = -(-len(head) // pieces)
        try:
            for at in range(0, len(head), step):
                sock.sendall(head[at:at + step])
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the whole head was sent: the answer is still there to read
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_a_long_query_string_gets_the_apps_414_that_explains(live_server):
    r = httpx.get(f"{live_server}/api/v0/bundles/", params={"q": "x" * (MAX_QUERY + 100)}, timeout=20)
    assert r.status_code == 414
    assert r.json()["error"] == "uri_too_long" and "request body" in r.json()["msg"]


def _status_and_json(answer: bytes) -> tuple[bytes, dict]:
    status, _, rest = answer.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in headers.lower(), answer[:300]
    assert b"connection: close" in headers.lower(), answer[:300]
    return status, json.loads(body)


def test_a_url_too_long_to_parse_is_a_json_414_and_the_server_serves_on(live_server):
    # Past MAX_URL httptools cannot split path from query; plain uvicorn answers a bare 400.
    query = b"%F1%B5%B0%81" * (MAX_URL // 12 + 1)
    head = b"GET /api/v0/bundles/?q=" + query + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    status, body = _status_and_json(_raw(live_server, head))
    assert status == b"HTTP/1.1 414 Request-URI Too Long"
    assert body["error"] == "uri_too_long" and str(MAX_URL) in body["msg"] and "request body" in body["msg"]
    assert httpx.get(f"{live_server}/healthz", timeout=20).status_code == 200


def test_a_request_that_is_not_http_gets_a_json_400(live_server):
    status, body = _status_and_json(_raw(live_server, b"GET /healthz\x01 HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert status == b"HTTP/1.1 400 Bad Request"
    assert body == {"success": False, "error": "bad_request", "msg": body["msg"]}
    assert "percent-encode" in body["msg"]


def test_a_head_over_the_bound_is_a_431_and_the_server_serves_on(live_server):
    head = (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (8 * MAX_HEAD) + b"\r\n\r\n")
    status, body = _status_and_json(_raw(live_server, head, pieces=64))  # counted over the pieces
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert body["error"] == "header_too_large" and str(MAX_HEAD) in body["msg"]
    assert httpx.get(f"{live_server}/healthz", timeout=20).status_code == 200


def test_the_bound_is_per_request_on_a_kept_alive_connection(live_server):
    big = "b" * (MAX_HEAD * 6 // 10)  # two of these on one connection are over the bound
    with httpx.Client(base_url=live_server, timeout=20) as client:
        answers = [client.get("/healthz", headers={"X-Big": big}).status_code for _ in range(3)]
    assert answers == [200, 200, 200]
