"""gpuyard's own CLI for machine owners (the official command names and flags), in-process against
a live server: show machines / machine, list and unlist machine, schedule / cancel / show maints.
Alice hosts box-4090 (2 × RTX 4090), bob box-3090 (fixture ``hosted``); bob rents on alice's."""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from datetime import UTC, datetime

import pytest

from gpuyard.cli.main import build_parser, main
from instance_reads import wait_status

HOST_COMMANDS = [("show", "machines"), ("show", "machine"), ("list", "machine"), ("unlist", "machine"),
                 ("schedule", "maint"), ("cancel", "maint"), ("show", "maints")]


@pytest.fixture
def run(alice, hosted, capsys, monkeypatch, tmp_path):
    """``run(*argv, stdin=None)`` as alice: (exit status, stdout, stderr)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("GPUYARD_URL", alice.url)
    monkeypatch.setenv("GPUYARD_API_KEY", alice.key)

    def go(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return go


def raw(run, *argv: str):
    code, out, err = run(*argv, "--raw")
    assert code == 0, err
    return json.loads(out)


def bob_rents(bob, machine_id: int) -> int:
    """Bob rents one GPU of the machine on demand; the instance id, once it runs."""
    with bob.sdk() as sdk:
        offer = sdk.search_offers(query=f"machine_id={machine_id} num_gpus=1", order="id")[0]
        iid = sdk.create_instance(offer["id"], image="busybox", disk=10)["new_contract"]
    with bob.http() as client:
        wait_status(client, iid, "running")
    return iid


def offers_of(bob, machine_id: int) -> list[dict]:
    with bob.sdk() as sdk:
        return sdk.search_offers(query=f"machine_id={machine_id}", order="id", storage=10)


def utc(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp()


def test_every_host_command_and_flag_has_help():
    parser = build_parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for verb, noun in HOST_COMMANDS:
        nouns = next(a for a in verbs.choices[verb]._actions if isinstance(a, argparse._SubParsersAction))
        command = nouns.choices[noun]
        assert command.description, (verb, noun)
        for action in command._actions:
            assert action.help and action.help != argparse.SUPPRESS, (verb, noun, action.dest)


def test_show_machines_and_machine(run, hosted, bob):
    box, theirs = hosted["box-4090"], hosted["box-3090"]
    iid = bob_rents(bob, box)
    code, out, err = run("show", "machines")
    assert code == 0, err
    line = next(x for x in out.splitlines() if "box-4090" in x)
    cells = [c.strip() for c in line.split("│")[1:-1]]
    assert cells[:7] == [str(box), "box-4090", "2x RTX 4090", "yes", "0.4", "0.1", "0.05"]
    listed_until = datetime.fromtimestamp(time.time() + 90 * 86400, UTC)  # the fleet file's default
    assert cells[7].startswith(listed_until.strftime("%Y-%m-%d"))
    assert cells[8] == "1"  # one GPU left: one one-GPU offer
    assert f": bob (instance {iid}, on demand, running)" in cells[9] and cells[9].startswith("GPU ")
    assert cells[10] == "-"  # no maintenance
    assert "box-3090" not in out  # bob's machine
    assert "$/GPU/h" in out and "rented by" in out and "storage $/GB/month" in out

    rows = raw(run, "show", "machines")["machines"]
    assert [r["id"] for r in rows] == [box] and rows[0]["gpu_occupancy"] in ("D -", "- D")
    assert run("show", "machines", "-q")[1].split() == [str(box)]

    code, out, err = run("show", "machine", str(box))
    assert code == 0, err
    fields = {line.split("  ", 1)[0]: line.split("  ", 1)[1].strip() for line in out.splitlines()
              if "  " in line}
    assert fields["owner"] == "alice" and fields["gpus"] == "2x RTX 4090 (24 GB each)"
    assert fields["listed"] == "yes" and fields["$/GPU/hour"] == "0.4" and fields["offers"] == "1"
    assert fields["min GPUs per offer"] == "1" and fields["address"] == "10.0.0.5"
    assert f"bob (instance {iid}, on demand, running)" in fields["rented by"]
    assert raw(run, "show", "machine", str(box)) == rows  # the server's list of one row
    assert run("show", "machine", str(box), "-q")[1].strip() == str(box)

    for argv in (("show", "machine", str(theirs)), ("show", "machine", "999999")):
        code, out, err = run(*argv)
        assert code == 1 and out == ""
        assert err.startswith(f"Error: machine {argv[-1]} not found among your machines"), err

    code, out, _ = run("show", "machines", "--api-key", bob.key)
    assert code == 0 and "box-3090" in out and "box-4090" not in out and "0.2" in out


def test_list_machine_prints_what_changed_and_offers_follow(run, hosted, bob):
    box, theirs = hosted["box-4090"], hosted["box-3090"]
    assert {o["dph_base"] / o["num_gpus"] for o in offers_of(bob, box)} == {0.40}
    code, out, err = run("list", "machine", str(box), "-g", "0.55", "-s", "0.2", "-b", "0.1",
                         "-u", "0.01", "-d", "0.005", "-m", "2", "-l", "2 weeks")
    assert code == 0, err
    assert out.startswith(f"Machine {box} (box-4090) listed; changed:")
    changed = {c[0]: c[1:] for c in
               ([x.strip() for x in line.split("│")[1:-1]] for line in out.splitlines() if "│" in line)}
    assert changed["$/GPU/hour"] == ["0.4", "0.55"]
    assert changed["min bid $/GPU/hour"] == ["0.05", "0.1"]
    assert changed["storage $/GB/month"] == ["0.1", "0.2"]
    assert changed["upload $/GB"] == ["0", "0.01"] and changed["download $/GB"] == ["0", "0.005"]
    assert changed["min GPUs per offer"] == ["1", "2"]
    assert changed["offers"] == ["2", "1"]  # the one-GPU offer is gone, the two-GPU one stays
    soon = datetime.fromtimestamp(time.time() + 14 * 86400, UTC)
    assert changed["listed until (UTC)"][1].startswith(soon.strftime("%Y-%m-%d"))
    assert "listed" not in changed  # it was listed already

    # Offers change at once: bob finds the new prices.
    (offer,) = offers_of(bob, box)
    assert offer["num_gpus"] == 2 and offer["dph_base"] == pytest.approx(1.10)
    assert offer["storage_cost"] == 0.2 and offer["min_bid"] == pytest.approx(0.2)
    code, out, _ = run("search", "offers", f"machine_id={box}", "--api-key", bob.key)
    assert code == 0 and "2x RTX 4090" in out and "1.1014" in out  # 2 × 0.55 + 5 GB of storage

    code, out, err = run("list", "machine", str(box), "-g", "0.55")
    assert code == 0 and out.strip() == f"Machine {box} (box-4090) listed; nothing changed.", err
    answer = raw(run, "list", "machine", str(box), "-m", "1")
    assert answer["success"] is True and "offers created/updated" in answer["msg"]

    refused = {
        ("-b", "5"): "above the on-demand price",
        ("-r", "0.3"): "gpuyard has no prepaid discounts",
        ("-v", "100"): "-v",
        ("-e", "2001-01-01"): "has passed",
        ("-l", "fortnight"): "'2 weeks'",
        ("-m", "0"): "min_chunk must be",
    }
    for flags, words in refused.items():
        code, out, err = run("list", "machine", str(box), *flags)
        assert code == 1 and out == "" and err.startswith("Error: ") and words in err, (flags, err)
    for bad in (("-e", "next tuesday"), ("-g", "cheap"), ("-e", "1798675200", "-l", "2 weeks")):
        with pytest.raises(SystemExit) as exited:
            run("list", "machine", str(box), *bad)
        assert exited.value.code == 2

    code, out, err = run("list", "machine", str(theirs), "-g", "9")
    assert code == 1 and out == ""
    assert f"Error: machine {theirs} not found among your machines" in err
    assert {o["dph_base"] for o in offers_of(bob, theirs)} == {0.20}  # untouched

    # -e takes a date (UTC midnight) and moves live rentals' end date with it
    iid = bob_rents(bob, box)
    code, out, err = run("list", "machine", str(box), "-e", "2099-06-30")
    assert code == 0, err
    assert "2099-06-30 00:00" in out and "1 running rental(s) on it now end 2099-06-30 00:00 UTC" in out
    with bob.sdk() as sdk:
        assert sdk.show_instance(iid)["end_date"] == utc("2099-06-30 00:00")
    assert raw(run, "show", "machine", str(box))[0]["end_date"] == utc("2099-06-30 00:00")
    code, out, err = run("list", "machine", str(box), "-e", "06/30/2099")  # the official form
    assert code == 0 and "nothing changed" in out, err


def test_unlist_asks_first_and_running_instances_continue(run, hosted, bob):
    box, theirs = hosted["box-4090"], hosted["box-3090"]
    iid = bob_rents(bob, box)
    code, out, _ = run("unlist", "machine", str(box), stdin="n\n")
    assert code == 1 and "Aborted." in out
    assert f"Unlist machine {box}? Its offers are withdrawn" in out and "running instances continue" in out
    assert raw(run, "show", "machine", str(box))[0]["listed"] is True
    assert offers_of(bob, box) != []

    code, out, err = run("unlist", "machine", str(box), stdin="y\n")
    assert code == 0, err
    assert f"all offers for machine {box} removed, machine delisted; its 1 instance(s) keep running." in out
    assert f"'gpuyard list machine {box}' lists it again." in out
    assert offers_of(bob, box) == []
    with bob.sdk() as sdk:
        assert sdk.show_instance(iid)["actual_status"] == "running"
    line = next(x for x in run("show", "machines")[1].splitlines() if "box-4090" in x)
    cells = [c.strip() for c in line.split("│")[1:-1]]
    assert cells[3] == "no" and cells[8] == "0" and f"bob (instance {iid}" in cells[9]

    code, out, err = run("unlist", "machine", str(theirs), "-y")
    assert code == 1 and f"Error: machine {theirs} not found among your machines" in err
    assert offers_of(bob, theirs) != []

    code, out, err = run("list", "machine", str(box))  # listed again: the free GPU is offered
    assert code == 0, err
    changed = {c[0]: c[1:] for c in
               ([x.strip() for x in line.split("│")[1:-1]] for line in out.splitlines() if "│" in line)}
    assert changed["listed"] == ["no", "yes"] and changed["offers"] == ["0", "1"]
    assert [o["num_gpus"] for o in offers_of(bob, box)] == [1]
    assert raw(run, "unlist", "machine", str(box), "-y")["success"] is True


def test_maintenance_windows(run, hosted):
    box, theirs = hosted["box-4090"], hosted["box-3090"]
    assert run("show", "maints") == (0, "No maintenance windows scheduled.\n", "")
    window = ("--sdate", "2030-01-02 03:00", "--duration", "2.5", "--maintenance_category", "power")
    code, out, _ = run("schedule", "maint", str(box), *window, stdin="n\n")
    assert code == 1 and "Aborted." in out
    assert (f"Schedule maintenance of machine {box} from 2030-01-02 03:00 to 2030-01-02 05:30 UTC "
            "(2.5 h, power)?") in out
    assert raw(run, "show", "maints") == []

    code, out, err = run("schedule", "maint", str(box), *window, stdin="y\n")
    assert code == 0, err
    assert (f"maintenance of machine {box} scheduled from 2030-01-02 03:00 UTC to 2030-01-02 05:30 UTC"
            in out)
    code, out, err = run("show", "maints")
    assert code == 0, err
    (line,) = [x for x in out.splitlines() if "power" in x]
    assert [c.strip() for c in line.split("│")[1:-1]] == [
        str(box), "2030-01-02 03:00", "2030-01-02 05:30", "2.5", "power"]
    assert raw(run, "show", "maints", "-i", f"{box},{theirs}") == [{
        "machine_id": box, "start_time": utc("2030-01-02 03:00"), "end_time": utc("2030-01-02 05:30"),
        "duration_hours": 2.5, "maintenance_category": "power"}]
    assert raw(run, "show", "maints", "-i", str(theirs)) == []  # not alice's: not in the answer
    assert run("show", "maints", "-q")[1].split() == [str(box)]
    line = next(x for x in run("show", "machines")[1].splitlines() if "box-4090" in x)
    assert "2030-01-02 03:00 to 2030-01-02 05:30 UTC (2.5 h, power)" in line
    # offers end before the window
    assert raw(run, "show", "machine", str(box))[0]["maintenances"][0]["maintenance_category"] == "power"

    code, out, err = run("schedule", "maint", str(box), "--sdate", str(utc("2031-03-04 00:00")),
                         "--duration", "1", "-y")  # epoch seconds; the category defaults
    assert code == 0 and "scheduled from 2031-03-04 00:00 UTC" in out, err
    assert [m["maintenance_category"] for m in raw(run, "show", "maints")] == ["power", "not provided"]
    code, _, err = run("schedule", "maint", str(box), "--sdate", "2001-01-01", "--duration", "1", "-y")
    assert code == 1 and "has already ended" in err
    for bad in (("--sdate", "soon", "--duration", "1"), ("--duration", "1"), ("--sdate", "2030-01-01")):
        with pytest.raises(SystemExit) as exited:
            run("schedule", "maint", str(box), *bad, "-y")
        assert exited.value.code == 2
    with pytest.raises(SystemExit):
        run("show", "maints", "-i", "42,x")

    for argv in (("schedule", "maint", str(theirs), *window, "-y"), ("cancel", "maint", str(theirs), "-y")):
        code, out, err = run(*argv)
        assert code == 1 and f"Error: machine {theirs} not found among your machines" in err, argv

    code, out, _ = run("cancel", "maint", str(box), stdin="\n")  # no answer means no
    assert code == 1 and f"Cancel every maintenance window of machine {box}" in out and "Aborted." in out
    assert len(raw(run, "show", "maints")) == 2
    code, out, err = run("cancel", "maint", str(box), stdin="yes\n")
    assert code == 0 and f"2 maintenance window(s) of machine {box} cancelled" in out, err
    assert run("show", "maints")[1] == "No maintenance windows scheduled.\n"
    code, out, _ = run("cancel", "maint", str(box), "-y")
    assert code == 0 and "nothing to cancel" in out
