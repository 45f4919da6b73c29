"""The env string: Docker flags, parsed strictly, with errors that show the right form."""

from __future__ import annotations

import pytest

from gpuyard.envspec import (
    MAX_ENV,
    MAX_ENV_ENTRIES,
    Port,
    parse_env,
    parse_env_dict,
    render_env,
    validate_env,
)
from gpuyard.errors import InvalidInput


def test_variables_ports_and_options():
    spec = parse_env(
        "-e MODEL_ID=deepseek -p 8000:8000 -e MODEL_ARGS='--model-id X --quantize gptq' "
        "-p 8081:8081/udp -h box -e EMPTY= -e B=x=y"
    )
    assert spec.variables == {
        "MODEL_ID": "deepseek",
        "MODEL_ARGS": "--model-id X --quantize gptq",
        "EMPTY": "",
        "B": "x=y",
    }
    assert spec.ports == {
        "8000/tcp": Port(container=8000, host=8000),
        "8081/udp": Port(container=8081, host=8081, proto="udp"),
    }
    assert spec.options == [("-h", "box")]


def test_later_duplicates_win():
    assert parse_env("-e A=1 -e A=2").variables == {"A": "2"}
    assert parse_env("-p 9000:80 -p 9001:80").ports["80/tcp"].host == 9001


@pytest.mark.parametrize(
    "text, needle",
    [
        ("VAR1=value1 VAR2=value2", "-e VAR1=value1"),
        ("-e A=1 TZ=UTC", "-e TZ=UTC"),
        ("--env A=1", "not a supported option"),
        ("-e A", "-e A=VALUE"),
        ("-e 1A=x", "not a valid variable name"),
        ("-p 70000:22", "out of range"),
        ("-p 1.2.3.4:80:80", "-p 8000:8000"),
        ("-e A='unclosed", "quote"),
        ("-e A=x\\", "a backslash at the very end escapes nothing"),
        ("-e", "has no value"),
    ],
)
def test_mistakes_say_how_to_fix_them(text, needle):
    with pytest.raises(InvalidInput) as exc:
        parse_env(text)
    assert needle in exc.value.msg


def test_a_dict_is_refused_with_the_string_form():
    with pytest.raises(InvalidInput) as exc:
        validate_env({"VAR1": "value1"})
    assert "-e VAR1=value1" in exc.value.msg and "not a dict" in exc.value.msg


def test_blank_env_is_stored_as_none():
    assert validate_env("   ") is None
    assert validate_env(" -e A=1 ") == "-e A=1"


def test_the_limit_is_64_kib():
    at_limit = "-e A=" + "x" * (MAX_ENV - 5)
    assert len(at_limit) == MAX_ENV == 65536
    assert len(parse_env(at_limit).variables["A"]) == MAX_ENV - 5
    assert validate_env(at_limit) == at_limit


@pytest.mark.parametrize("check", [parse_env, validate_env])
def test_longer_env_is_refused_before_splitting(check):
    # An unclosed quote 1 MiB long: the size is what is reported, so nothing was split.
    text = "-e A='" + "x" * (1024 * 1024 - 6)
    with pytest.raises(InvalidInput) as exc:
        check(text)
    assert exc.value.code == "invalid_env"
    assert exc.value.msg == (
        "env is 1048576 characters long; the limit is 65536 (64 KiB): keep large values out of "
        "env (e.g. put them in a file the onstart script reads)"
    )


def test_stored_env_longer_than_the_limit_still_reads_back():
    # A merged env is rendered from two bounded parts, and quoting may lengthen it.
    spec = parse_env('-e A="' + "'" * (MAX_ENV - 10) + '"')
    stored = render_env(spec)
    assert len(stored) > MAX_ENV
    with pytest.raises(InvalidInput):
        parse_env(stored)
    assert parse_env(stored, limit=None).variables == spec.variables


def test_the_dict_form_is_bounded_too():
    assert parse_env_dict({"A": "x" * (MAX_ENV - 1)}).variables["A"] == "x" * (MAX_ENV - 1)
    with pytest.raises(InvalidInput) as exc:
        parse_env_dict({"A": "x" * MAX_ENV})
    assert exc.value.msg.startswith(
        "env (its keys and values together) is 65537 characters long; the limit is 65536"
    )
    many = {f"V{i}": "1" for i in range(MAX_ENV_ENTRIES)}
    assert len(parse_env_dict(many).variables) == MAX_ENV_ENTRIES
    many["-p 8000:8000"] = "1"
    with pytest.raises(InvalidInput) as exc:
        parse_env_dict(many)
    assert exc.value.code == "invalid_env"
    assert exc.value.msg.startswith("env has 1001 entries; the limit is 1000")


def test_stored_pairs_give_back_the_spec_without_reparsing():
    """Instances keep their env as pairs; the runtime's spec is rebuilt from them alone."""
    from gpuyard.envspec import env_from_pairs, env_pairs

    spec = parse_env("-e A=1 -e 'B=x y' -p 8000:8000 -h box -v /data:/data -n net1 -e C=")
    back = env_from_pairs(env_pairs(spec))
    assert back.variables == {"A": "1", "B": "x y", "C": ""}
    assert back.options == [("-h", "box"), ("-v", "/data:/data"), ("-n", "net1")]
    assert back.ports == {}  # an instance's ports live in its port map


def test_the_official_clients_quoted_name_is_the_variable():
    """``--env '-e "X=a b"'`` reaches the server as {'"X': 'a b'} (VAST-WIRE §9)."""
    spec = parse_env_dict({'"X': "a b", "'Y": "c", "Z": "d"})
    assert spec.variables == {"X": "a b", "Y": "c", "Z": "d"}
    with pytest.raises(InvalidInput, match="not a valid variable name"):
        parse_env_dict({'"1X': "v"})
