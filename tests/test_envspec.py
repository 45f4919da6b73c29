"""The env string: Docker flags, parsed strictly, with errors that show the right form."""

from __future__ import annotations

import pytest

from gpuyard.envspec import Port, parse_env, validate_env
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
