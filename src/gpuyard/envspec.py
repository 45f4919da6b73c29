"""The ``env`` field: Docker-flag strings such as ``-e MODEL_ID=x -p 8000:8000``.

Shared by the server (validation, merging) and the clients (early, friendly errors). Pure Python.

Grammar (strict, unlike the official client's parser, which silently drops what it does not
understand): the string is split like a POSIX shell would split it (quotes group words and are
removed), then read as flag/value pairs:

- ``-e NAME=VALUE``   an environment variable (``NAME`` is a shell identifier; ``VALUE`` may be empty)
- ``-p [HOST:]PORT[/tcp|/udp]``   a published port
- ``-h HOSTNAME``, ``-v SOURCE:TARGET``, ``-n NETWORK``   passed through as Docker options

Anything else (a bare ``NAME=VALUE``, an unknown flag, a flag with no value) is an error whose
message shows the right way to write it.

Size: an env string, or the keys and values of the dict form together, is at most ``MAX_ENV``
characters (64 Ki), and the dict form has at most ``MAX_ENV_ENTRIES`` entries; longer input is
refused before it is split. Splitting (:func:`gpuyard.shellwords.split`) is linear in the length
anyway. Env already stored (an instance's merged env may be longer than either part) is read with
``limit=None``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from gpuyard import shellwords
from gpuyard.errors import InvalidInput

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PORT_RE = re.compile(r"^(?:(\d{1,5}):)?(\d{1,5})(?:/(tcp|udp))?$")
FLAGS = ("-e", "-p", "-h", "-v", "-n")
RIGHT_FORM = '"-e VAR1=value1 -e VAR2=value2 -p 8000:8000"'
MAX_ENV = 64 * 1024  # characters of an env string, or of a dict's keys and values together
MAX_ENV_ENTRIES = 1000  # entries of the dict form


@dataclass(frozen=True)
class Port:
    container: int
    host: int | None = None
    proto: str = "tcp"

    @property
    def key(self) -> str:
        """Ports merge by container port and protocol."""
        return f"{self.container}/{self.proto}"

    def spec(self) -> str:
        text = f"{self.host}:{self.container}" if self.host is not None else str(self.container)
        return text + ("/udp" if self.proto == "udp" else "")


@dataclass
class EnvSpec:
    """A parsed env string: variables by name, ports by container port, other options in order."""

    variables: dict[str, str] = field(default_factory=dict)
    ports: dict[str, Port] = field(default_factory=dict)
    options: list[tuple[str, str]] = field(default_factory=list)


def env_type_error(value: object) -> InvalidInput:
    if isinstance(value, dict):
        sample = " ".join(f"-e {k}={v}" for k, v in list(value.items())[:3]) or "-e VAR1=value1"
        return InvalidInput(
            f"env must be one string in Docker flag format, not a dict: write {sample!r} "
            f"(for example {RIGHT_FORM})",
            code="invalid_env",
        )
    return InvalidInput(
        f"env must be a string in Docker flag format such as {RIGHT_FORM}, "
        f"not {type(value).__name__}",
        code="invalid_env",
    )


def _err(msg: str) -> InvalidInput:
    return InvalidInput(msg, code="invalid_env")


def parse_port(spec: str) -> Port:
    m = PORT_RE.match(spec)
    if not m:
        raise _err(
            f"env: port {spec!r} is not a port mapping; write -p 8000:8000, -p 8000 "
            "or -p 8081:8081/udp"
        )
    host, container, proto = m.group(1), int(m.group(2)), m.group(3) or "tcp"
    for number in (container, int(host) if host else None):
        if number is not None and not 1 <= number <= 65535:
            raise _err(f"env: port {spec!r} is out of range; ports are 1 to 65535")
    return Port(container=container, host=int(host) if host else None, proto=proto)


def _too_long(size: int, what: str = "env") -> InvalidInput:
    return _err(
        f"{what} is {size} characters long; the limit is {MAX_ENV} (64 KiB): keep large values "
        "out of env (e.g. put them in a file the onstart script reads)"
    )


def parse_env(text: object, *, limit: int | None = MAX_ENV) -> EnvSpec:
    """Parse and validate an env string; raise :class:`InvalidInput` saying how to fix it.

    A string longer than ``limit`` characters is refused before it is split. Input from users
    keeps the default; ``limit=None`` is for env already stored (e.g. an instance's merged env).
    """
    if text is None:
        return EnvSpec()
    if not isinstance(text, str):
        raise env_type_error(text)
    if limit is not None and len(text) > limit:
        raise _too_long(len(text))
    try:
        tokens = shellwords.split(text)
    except ValueError as exc:
        if str(exc) == shellwords.NO_ESCAPED_CHARACTER:
            raise _err(
                f"env: {exc} in {text!r}; a backslash at the very end escapes nothing: remove it "
                "or double it"
            ) from None
        raise _err(f"env: {exc} in {text!r}; close every quote you open") from None
    spec = EnvSpec()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok not in FLAGS:
            if "=" in tok and not tok.startswith("-"):
                raise _err(
                    f"env: {tok!r} is missing its -e flag; write '-e {tok}' "
                    f"(the whole env is one string such as {RIGHT_FORM})"
                )
            raise _err(
                f"env: {tok!r} is not a supported option; use -e NAME=VALUE, -p PORTS, "
                "-h HOSTNAME, -v SOURCE:TARGET or -n NETWORK"
            )
        if i + 1 >= len(tokens):
            raise _err(f"env: {tok} at the end has no value; write for example '-e NAME=VALUE'")
        value = tokens[i + 1]
        i += 2
        if tok == "-e":
            name, eq, val = value.partition("=")
            if not eq:
                raise _err(f"env: '-e {value}' needs a value; write '-e {value}=VALUE'")
            if not NAME_RE.match(name):
                raise _err(
                    f"env: {name!r} is not a valid variable name; use letters, digits and _, "
                    "not starting with a digit"
                )
            spec.variables[name] = val
        elif tok == "-p":
            port = parse_port(value)
            spec.ports[port.key] = port
        else:
            spec.options.append((tok, value))
    return spec


def validate_env(value: object) -> str | None:
    """Check a template's env and return it as stored (stripped; empty means none)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise env_type_error(value)
    parse_env(value)  # refuses more than MAX_ENV characters before splitting
    return value.strip() or None


def unquoted(key: str) -> str:
    """A variable name as the official client leaves it for ``-e "X=a b"``: it splits on spaces
    outside quotes and then on ``=``, so the opening quote stays in the key (``"X``; VAST-WIRE
    §9) while the value loses its quotes. The name is the key without its quotes."""
    if key[:1] in ("'", '"'):
        return key[1:].rstrip(key[0])
    return key


def parse_env_dict(value: dict) -> EnvSpec:
    """The dict form the official client sends for instances (VAST-WIRE §9):
    ``{"TZ": "UTC", "-p 8000:8000": "1", "-h": "box"}``. Keys are checked as strictly as the
    string form; values must be strings (numbers are taken as their text). At most
    ``MAX_ENV_ENTRIES`` entries and ``MAX_ENV`` characters of keys and values together."""
    if len(value) > MAX_ENV_ENTRIES:
        raise _err(
            f"env has {len(value)} entries; the limit is {MAX_ENV_ENTRIES}: keep large values "
            "out of env (e.g. put them in a file the onstart script reads)"
        )
    size = 0
    for key, raw in value.items():
        size += len(key) if isinstance(key, str) else len(str(key))
        if isinstance(raw, str):
            size += len(raw)
        elif isinstance(raw, int | float) and not isinstance(raw, bool):
            size += len(str(raw))
    if size > MAX_ENV:
        raise _too_long(size, "env (its keys and values together)")
    spec = EnvSpec()
    for key, raw in value.items():
        if isinstance(raw, bool) or raw is None or not isinstance(raw, str | int | float):
            raise _err(f"env: the value of {key!r} must be a string, not {show_type(raw)}")
        val = str(raw)
        flag, _, rest = str(key).partition(" ")
        if flag == "-p" and rest:
            port = parse_port(rest.strip())
            spec.ports[port.key] = port
        elif flag in ("-v", "-n") and rest:
            spec.options.append((flag, rest.strip()))
        elif key == "-h":
            spec.options.append(("-h", val))
        elif NAME_RE.match(unquoted(str(key))):
            spec.variables[unquoted(str(key))] = val
        else:
            raise _err(
                f"env: {key!r} is not a valid variable name or option; variable names use "
                "letters, digits and _ (not starting with a digit), ports are written "
                "'-p 8000:8000' (for example {\"MODEL\": \"x\", \"-p 8000:8000\": \"1\"})"
            )
    return spec


def show_type(value: object) -> str:
    return "null" if value is None else type(value).__name__


def parse_any(value: object) -> EnvSpec:
    """An instance request's env: a Docker-flag string, the official client's dict, or nothing."""
    if isinstance(value, dict):
        return parse_env_dict(value)
    return parse_env(value)


def merge_env(base: EnvSpec, over: EnvSpec) -> EnvSpec:
    """``over`` merged into ``base`` by key: variables by name, ports by container port and
    protocol, ``-h`` by flag, ``-v``/``-n`` by their whole value. ``over`` wins; order is base
    first, then what ``over`` adds."""
    merged = EnvSpec(dict(base.variables), dict(base.ports), list(base.options))
    merged.variables.update(over.variables)
    merged.ports.update(over.ports)
    for flag, value in over.options:
        if flag == "-h":
            merged.options = [(f, v) for f, v in merged.options if f != "-h"]
        elif (flag, value) in merged.options:
            continue
        merged.options.append((flag, value))
    return merged


def render_env(spec: EnvSpec) -> str:
    """The Docker-flag string of a spec (values quoted only when needed)."""
    parts: list[str] = []
    for name, value in spec.variables.items():
        parts += ["-e", shlex.quote(f"{name}={value}")]
    for port in spec.ports.values():
        parts += ["-p", port.spec()]
    for flag, value in spec.options:
        parts += [flag, shlex.quote(value)]
    return " ".join(parts)


def env_pairs(spec: EnvSpec) -> list[list[str]]:
    """``extra_env`` of an instance row: ``[name, value]`` pairs, ports as ``["-p 8000:8000",
    "1"]``, ``-h`` as ``["-h", name]`` and ``-v``/``-n`` as ``["-v SPEC", "1"]``."""
    pairs = [[name, value] for name, value in spec.variables.items()]
    pairs += [[f"-p {port.spec()}", "1"] for port in spec.ports.values()]
    for flag, value in spec.options:
        pairs.append([flag, value] if flag == "-h" else [f"{flag} {value}", "1"])
    return pairs


def env_from_pairs(pairs: list[list[str]]) -> EnvSpec:
    """The spec back from :func:`env_pairs`' output (as instances store it), with no parsing of
    an env string: variables by name, ``-h``/``-v``/``-n`` options; ports are left out (an
    instance's ports live in its port map)."""
    spec = EnvSpec()
    for key, value in pairs:
        if key == "-h":
            spec.options.append(("-h", value))
        elif key.startswith("-p "):
            continue
        elif key.startswith(("-v ", "-n ")):
            spec.options.append((key[:2], key[3:]))
        else:
            spec.variables[key] = value
    return spec
