r"""Split a string into words the way ``shlex.split`` does, in time linear in its length.

``shlex.split(text)`` (POSIX mode, no comments, split on whitespace) grows each word one
character at a time with ``str +=`` on an attribute, which copies the word every time: a word of
n characters costs O(n²) (a 1 MB word took 13 s). :func:`split` gives the same words and raises
the same errors, but scans the text once with one compiled regular expression, collects the
pieces of each word in a list and joins them once.

Grammar (exactly what CPython 3.11's ``shlex`` does with ``posix=True``, ``whitespace_split=True``
and ``commenters=''``)::

    text    := blank? word (blank word)* blank?  |  blank?
    blank   := one or more of SPACE TAB CR LF    (only these: VT, FF, NBSP and other Unicode
                                                  spaces are ordinary word characters)
    word    := piece+                            (adjacent pieces join into one word)
    piece   := plain | escaped | single | double
    plain   := a run of characters other than blank, ' " and \   (taken as is: $ ` # ; | …
               are not special)
    escaped := \ C       C is any character, newline included; gives C (so backslash-newline
                         is a newline in the word, not a line continuation)
    single  := ' ... '   everything up to the next ' is taken as is, backslashes included
    double  := " ... "   inside, \\ gives \ and \" gives "; a backslash before any other
                         character (newline, $ and ` included) is kept along with it

A word made only of empty quotes (``''`` or ``""``) is an empty word; ``a''b`` is ``ab``.

Errors, raised as ``ValueError`` with ``shlex``'s own messages (both can only happen at the end):

- ``No closing quotation``: a ' or " is never closed;
- ``No escaped character``: the text ends in a backslash that escapes nothing, outside quotes or
  inside double quotes (``"abc\``).
"""

from __future__ import annotations

import re

__all__ = ["NO_CLOSING_QUOTATION", "NO_ESCAPED_CHARACTER", "split"]

NO_CLOSING_QUOTATION = "No closing quotation"
NO_ESCAPED_CHARACTER = "No escaped character"

# Every character of the text starts exactly one alternative, so finditer never skips any.
# Possessive quantifiers (*+, ++) never backtrack: each character is looked at a bounded number of
# times, whatever the input.
_DOUBLE_BODY = r'[^"\\]*+(?:\\.[^"\\]*+)*+'
_PIECES = re.compile(
    rf"""
      (?P<blank>[ \t\r\n]++)
    | (?P<plain>[^ \t\r\n'"\\]++)
    | \\(?P<escaped>.)
    | '(?P<single>[^']*+)'
    | "(?P<double>{_DOUBLE_BODY})"
    | (?P<unclosed>['"\\])
    """,
    re.DOTALL | re.VERBOSE,
)
_DOUBLE_PREFIX = re.compile(_DOUBLE_BODY, re.DOTALL)


def split(text: str) -> list[str]:
    """The words of ``text``, exactly as ``shlex.split(text)`` returns them."""
    if not isinstance(text, str):
        raise TypeError(f"split() takes a str, not {type(text).__name__}")
    words: list[str] = []
    parts: list[str] | None = None  # the pieces of the word being read; None between words
    for m in _PIECES.finditer(text):
        kind = m.lastgroup
        if kind == "blank":
            if parts is not None:
                words.append("".join(parts))
                parts = None
            continue
        if parts is None:
            parts = []
        if kind == "double":
            body = m.group(kind)
            if "\\" in body:
                body = _unescape_double(body)
            parts.append(body)
        elif kind == "unclosed":
            raise ValueError(_error_at(text, m.start()))
        else:  # plain, escaped, single
            parts.append(m.group(kind))
    if parts is not None:
        words.append("".join(parts))
    return words


def _unescape_double(body: str) -> str:
    r"""A double-quoted body with ``\\`` made ``\`` and ``\"`` made ``"``; other pairs kept.

    The body is plain characters and backslash pairs ``\c``, paired from the left. In a run of
    backslashes ``str.replace`` pairs them from the left too, so the first pass turns exactly
    the ``\\`` pairs into ``\``. Every ``"`` of the body is the second half of a ``\"`` pair,
    so after that pass each ``"`` still follows its own backslash, and the second pass removes
    exactly those. Both passes run in C, much faster than a ``re.sub`` per quoted piece.
    """
    return body.replace("\\\\", "\\").replace('\\"', '"')


def _error_at(text: str, pos: int) -> str:
    """Why the quote or backslash at ``pos`` could not be read (it runs to the end of text)."""
    char = text[pos]
    if char == "'":
        return NO_CLOSING_QUOTATION
    if char == "\\":  # a backslash with a character after it is always an escape
        return NO_ESCAPED_CHARACTER
    body = _DOUBLE_PREFIX.match(text, pos + 1)
    assert body is not None  # the pattern matches the empty string
    # The body stops at the end of the text, or at a lone backslash that is the last character.
    return NO_CLOSING_QUOTATION if body.end() == len(text) else NO_ESCAPED_CHARACTER
