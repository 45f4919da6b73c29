"""gpuyard's own SDK host methods (official names and arguments) against a live server."""

from __future__ import annotations

import time

import pytest

from gpuyard.sdk.errors import NotFound


def test_sdk_host_methods(alice, hosted):
    box, theirs = hosted["box-4090"], hosted["box-3090"]
    with alice.sdk() as sdk:
        assert [m["hostname"] for m in sdk.show_machines()] == ["box-4090"]
        assert sdk.show_machine(box)["gpu_occupancy"] == "- -"
        with pytest.raises(NotFound, match="not found among your machines"):
            sdk.show_machine(theirs)
        answer = sdk.list_machine(box, price_gpu=0.7, min_chunk=2, duration="3 days")
        assert answer["success"] is True and answer["extended"] == 0
        row = sdk.show_machine(box)
        assert row["listed_gpu_cost"] == 0.7 and row["min_chunk"] == 2 and row["offers"] == 1
        assert row["end_date"] == pytest.approx(time.time() + 3 * 86400, abs=60)
        assert "delisted" in sdk.unlist_machine(box)["msg"]
        start = time.time() + 3600
        assert sdk.schedule_maint(box, start, 1.5, category="disk")["success"] is True
        assert sdk.show_maints([box, theirs]) == [{
            "machine_id": box, "start_time": start, "end_time": start + 5400, "duration_hours": 1.5,
            "maintenance_category": "disk"}]
        assert sdk.show_maints() == sdk.show_maints([box])  # no ids: all your machines' windows
        assert "1 maintenance window(s)" in sdk.cancel_maint(box)["msg"]
        assert sdk.show_maints([box]) == []
