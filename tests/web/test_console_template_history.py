"""The console's template page and diff page list another user's versions only when they were
saved as public; the creator's own pages list them all."""

from __future__ import annotations

import pytest

TOKEN = "hf_pRiVaTe0123456789"


@pytest.fixture
def history(alice) -> dict:
    """alice's template saved private with a token, cleaned up, then published."""
    with alice.http() as api:
        first = api.post("/api/v0/template/", json={
            "name": "llm", "image": "vllm/vllm-openai", "env": f"-e HF_TOKEN={TOKEN}",
        }).json()["template"]
        cleaned = api.put("/api/v0/template/", json={"hash_id": first["hash_id"], "env": "-e A=1"})
        published = api.put("/api/v0/template/", json={"hash_id": cleaned.json()["template"]["hash_id"],
                                                       "private": False})
    return {"id": first["id"], "private": [first["hash_id"], cleaned.json()["template"]["hash_id"]],
            "public": published.json()["template"]["hash_id"]}


@pytest.fixture
def bob_console(console_for, bob):
    return console_for(bob)


def test_another_user_sees_only_the_public_versions(history, bob_console):
    r = bob_console.get(f"/templates/{history['id']}")
    assert r.status_code == 200 and history["public"] in r.text
    for hidden in history["private"]:
        assert hidden not in r.text
    assert TOKEN not in r.text

    r = bob_console.get(f"/templates/{history['id']}/diff")
    assert r.status_code == 200 and TOKEN not in r.text
    for hidden in history["private"]:
        assert hidden not in r.text
        r = bob_console.get(f"/templates/{history['id']}/diff",
                            params={"a": hidden, "b": history["public"]})
        assert r.status_code == 404 and "is not a hash of one of the versions" in r.text
        assert TOKEN not in r.text


def test_the_creator_sees_and_compares_every_version(history, console):
    r = console.get(f"/templates/{history['id']}")
    for hash_id in (*history["private"], history["public"]):
        assert hash_id in r.text
    r = console.get(f"/templates/{history['id']}/diff",
                    params={"a": history["private"][0], "b": history["public"]})
    assert r.status_code == 200 and TOKEN in r.text


def test_a_private_hash_given_away_still_opens_its_page(history, bob_console):
    r = bob_console.get(f"/templates/hash/{history['private'][0]}")
    assert r.status_code == 200 and TOKEN in r.text
