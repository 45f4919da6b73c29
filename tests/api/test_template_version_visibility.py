"""Publishing a template keeps its private past private: another user lists (versions, search by
hash) only the versions that were public when saved; the creator lists them all; a hash given
away still resolves."""

from __future__ import annotations

import json

import httpx
import pytest

TOKEN = "hf_pRiVaTe0123456789"


def create(client: httpx.Client, **body) -> dict:
    r = client.post("/api/v0/template/", json=body)
    assert r.status_code == 200, r.text
    return r.json()["template"]


def edit(client: httpx.Client, hash_id: str, **changes) -> dict:
    r = client.put("/api/v0/template/", json={"hash_id": hash_id, **changes})
    assert r.status_code == 200, r.text
    return r.json()["template"]


def by_hash(client: httpx.Client, op: str, value) -> list[int]:
    r = client.get("/api/v0/template/", params={"select_filters": json.dumps({"hash_id": {op: value}})})
    assert r.status_code == 200, r.text
    return [t["id"] for t in r.json()["templates"]]


def versions(client: httpx.Client, template_id: int) -> httpx.Response:
    r = client.get(f"/api/v0/template/{template_id}/versions")
    assert r.status_code == 200, r.text
    return r


@pytest.fixture
def published(alice) -> dict:
    """alice's template: saved private with a token in env and onstart, cleaned up (still
    private), published, then renamed while public. Its four hashes, oldest first."""
    with alice.http() as api:
        first = create(api, name="llm", image="vllm/vllm-openai",
                       env=f"-e HF_TOKEN={TOKEN} -p 8000:8000", onstart=f"huggingface-cli login {TOKEN}")
        cleaned = edit(api, first["hash_id"], env="-p 8000:8000", onstart="vllm serve")
        public = edit(api, cleaned["hash_id"], private=False)
        renamed = edit(api, public["hash_id"], name="llm server")
    assert first["private"] and cleaned["private"] and not public["private"]
    return {"id": first["id"], "hashes": [first["hash_id"], cleaned["hash_id"], public["hash_id"],
                                           renamed["hash_id"]]}


def test_others_see_only_the_versions_saved_as_public(published, bob):
    private1, private2, public1, public2 = published["hashes"]
    with bob.http() as api:
        r = versions(api, published["id"])
        assert [v["hash_id"] for v in r.json()["versions"]] == [public2, public1]
        assert TOKEN not in r.text and "huggingface-cli" not in r.text
        assert by_hash(api, "eq", private1) == [] and by_hash(api, "eq", private2) == []
        assert by_hash(api, "in", [private1, private2]) == []
        assert by_hash(api, "eq", public1) == [published["id"]]
        assert by_hash(api, "in", [private1, public2]) == [published["id"]]
        # an edit (or delete) by an unlisted hash does not even say whose template it is
        r = api.put("/api/v0/template/", json={"hash_id": private1, "name": "mine now"})
        assert r.status_code == 404 and r.json()["error"] == "template_not_found"
        r = api.put("/api/v0/template/", json={"hash_id": public1, "name": "mine now"})
        assert r.status_code == 403 and r.json()["error"] == "not_template_owner"


def test_the_creator_sees_every_version(published, alice):
    with alice.http() as api:
        r = versions(api, published["id"])
        assert [v["hash_id"] for v in r.json()["versions"]] == published["hashes"][::-1]
        assert TOKEN in r.text
        for hash_id in published["hashes"]:
            assert by_hash(api, "eq", hash_id) == [published["id"]]


def test_a_hash_given_away_still_resolves(published, bob):
    with bob.http() as api:
        r = api.get(f"/api/v0/template/hash/{published['hashes'][0]}")
        assert r.status_code == 200, r.text
        assert r.json()["template"]["env"] == f"-e HF_TOKEN={TOKEN} -p 8000:8000"
