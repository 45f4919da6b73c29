"""shellwords.split: the words and errors of shlex.split, in linear time."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gpuyard.shellwords import split

# Everything shlex treats specially, plus characters it must not (other spaces, shell syntax).
SPECIAL = ["'", '"', "\\", " ", "\t", "\n", "\r", "=", "-", ":", "/", "$", "`", "#", ";", "|"]
ORDINARY = ["a", "b", "Z", "0", "_", "é", "ß", "中", "\x0b", "\x0c", "\xa0", "\u2003", "\x00"]
SHELLISH = st.text(alphabet=st.sampled_from(SPECIAL + ORDINARY), max_size=40)


def outcome(fn, text: str):
    try:
        return fn(text)
    except ValueError as exc:
        return ValueError, str(exc)


@settings(max_examples=3000)
@given(SHELLISH)
@example("\\")
@example('"\\')
@example('"\\\\')
@example("'\\")
@example("''")
@example("\\\n")
@example('"\\\n"')
def test_same_words_or_same_error_as_shlex(text):
    assert outcome(split, text) == outcome(shlex.split, text)


@settings(max_examples=500)
@given(st.text())
def test_same_as_shlex_on_any_text(text):
    assert outcome(split, text) == outcome(shlex.split, text)


@settings(max_examples=500)
@given(st.lists(st.text(), max_size=6))
def test_quoted_words_come_back(words):
    assert split(shlex.join(words)) == words


@pytest.mark.parametrize(
    "text, words",
    [
        ("", []),
        (" \t\r\n ", []),
        ("-e MODEL=x -p 8000:8000", ["-e", "MODEL=x", "-p", "8000:8000"]),
        ("-e A='1 2'  -e B=\"3 4\"", ["-e", "A=1 2", "-e", "B=3 4"]),
        ("''", [""]),
        ('a "" b', ["a", "", "b"]),
        ("a''b\"\"c", ["abc"]),
        ("'a'\"b\"c\\ d", ["abc d"]),
        ("'a\\b'", ["a\\b"]),  # no escapes inside single quotes
        ('"a\\\\b\\"c"', ['a\\b"c']),  # \\ and \" inside double quotes
        ('"\\\\\\"x\\\\\\\\"', ['\\"x\\\\']),  # runs of backslashes pair from the left
        ('"\\$x \\` \\n"', ["\\$x \\` \\n"]),  # any other backslash is kept
        ('"a\\\nb"', ["a\\\nb"]),  # backslash-newline kept inside double quotes
        ("a\\\nb", ["a\nb"]),  # and escapes the newline outside
        ("a\\b \\'", ["ab", "'"]),
        ("x\x0by\xa0z\u2003", ["x\x0by\xa0z\u2003"]),  # only space, tab, CR, LF separate
        ("# not a comment", ["#", "not", "a", "comment"]),
        ("é 中文 'ß x'", ["é", "中文", "ß x"]),
    ],
)
def test_examples(text, words):
    assert split(text) == words == shlex.split(text)


@pytest.mark.parametrize(
    "text, msg",
    [
        ("-e A='open", "No closing quotation"),
        ('-e A="open', "No closing quotation"),
        ("'a\\", "No closing quotation"),  # the backslash is literal in single quotes
        ('"a\\\\', "No closing quotation"),
        ("a\\", "No escaped character"),
        ('"a\\', "No escaped character"),
        ("\\", "No escaped character"),
    ],
)
def test_errors(text, msg):
    with pytest.raises(ValueError, match=f"^{msg}$"):
        split(text)
    with pytest.raises(ValueError, match=f"^{msg}$"):
        shlex.split(text)


def test_only_strings():
    with pytest.raises(TypeError):
        split(None)  # type: ignore[arg-type]


MB2 = 2 * 1024 * 1024


@pytest.mark.parametrize(
    "text, length",
    [
        ("a" * MB2, MB2),
        ("'" + "a b " * (MB2 // 4) + "'", MB2),
        ('"' + 'a\\"' * (MB2 // 3) + '"', 2 * (MB2 // 3)),
        ("\\ " * (MB2 // 2), MB2 // 2),
        ("'x'" * (MB2 // 3), MB2 // 3),
    ],
)
def test_a_2_mb_word_is_one_word(text, length):
    # shlex.split takes minutes on these; split reads each character a bounded number of times.
    # Speed itself is measured by bench/env_parse.py, not asserted here.
    [word] = split(text)
    assert len(word) == length


def test_many_words():
    words = split("-e A=1 " * 100_000)
    assert len(words) == 200_000 and words[:2] == ["-e", "A=1"] and set(words) == {"-e", "A=1"}


def test_unclosed_quote_at_the_start_of_2_mb():
    with pytest.raises(ValueError, match="No closing quotation"):
        split('"' + "a\\\\" * (MB2 // 3))
