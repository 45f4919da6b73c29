"""The engine the docker runtime tests use runs the local test image (skipped without one)."""

from __future__ import annotations


def test_the_engine_runs_the_test_image(engine, test_image):
    out = engine.containers.run(test_image, ["sh", "-c", "echo ok"], remove=True,
                                labels={"gpuyard.managed": "true", "gpuyard.test": "engine-available"})
    assert out.decode().strip() == "ok"
