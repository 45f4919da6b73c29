"""``gpuyard serve`` and ``gpuyard worker`` (api.serving.run) move what start-up built out of the
garbage collector's reach before they serve: a full collection then walks only what requests
made since, instead of pausing a request for 100-300 ms (bench/README.md, "rentals.py")."""

from __future__ import annotations

import gc

import uvicorn

from gpuyard.api import serving


def test_the_heap_is_frozen_before_serving_starts(app, monkeypatch):
    seen: dict[str, int] = {}

    def fake_run(self) -> None:  # what the server would see at its first request
        seen["frozen"] = gc.get_freeze_count()
        garbage = [[] for _ in range(10)]
        for item in garbage:
            item.append(item)  # cycles only a collection frees
        del garbage, item
        seen["freed"] = gc.collect()

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    gc.unfreeze()
    try:
        serving.run(app, app.state.settings)
    finally:
        gc.unfreeze()  # (this test process goes on making and dropping apps)
    assert seen["frozen"] > 10_000, seen  # the modules, routes, models and mappers at least
    assert seen["freed"] >= 10, seen  # what is made afterwards is still collected
