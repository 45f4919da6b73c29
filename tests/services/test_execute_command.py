"""Which command lines ``execute`` runs, and as which words (no shell: nothing is expanded)."""

from __future__ import annotations

import pytest

from gpuyard.errors import InvalidInput
from gpuyard.services.instance_access.execute import parse_command


@pytest.mark.parametrize(("line", "argv"), [
    ("ls -l /workspace", ["ls", "-l", "/workspace"]),
    ("du -sh '/my files'", ["du", "-sh", "/my files"]),
    ('rm "/tmp/a b" /tmp/c', ["rm", "/tmp/a b", "/tmp/c"]),
    ("ls /data/*.csv", ["ls", "/data/*.csv"]),  # no glob: the name as written
    ("  ls  ", ["ls"]),
])
def test_allowed_lines_become_their_words(line, argv):
    assert parse_command(line) == argv


@pytest.mark.parametrize(("line", "says"), [
    ("ls; rm -rf /", "shell syntax (;)"),
    ("ls | head", "shell syntax (|)"),
    ("ls $(pwd)", "shell syntax ($)"),
    ("ls `pwd`", "shell syntax (`)"),
    ("ls > out", "shell syntax (>)"),
    ("ls < in", "shell syntax (<)"),
    ("ls && rm x", "shell syntax (&)"),
    ("ls\nrm x", "shell syntax ('\\n')"),
    ("ls 'a;b'", "shell syntax (;)"),  # refused even quoted: one rule, easy to tell
    ("cat /etc/passwd", "'cat' is not allowed"),
    ("/bin/ls /", "'/bin/ls' is not allowed"),
    ("sh -c 'ls'", "'sh' is not allowed"),
    ("", "command is empty"),
    ("ls 'open", "cannot be split into words"),
])
def test_everything_else_is_refused_saying_what_is_allowed(line, says):
    with pytest.raises(InvalidInput) as info:
        parse_command(line)
    assert says in info.value.msg and "ls, rm and du" in info.value.msg
    assert info.value.code == "command_not_allowed"
