"""A small in-process cache of encoded answers, checked against a generation number.

Template searches are answered again and again while templates rarely change. An entry is kept
with the generation number the data had when it was read (:mod:`template_rows`: every template
change bumps it, in the database, so every process sees it); a lookup gives the entry back only
while the generation is unchanged and the entry is younger than ``ttl`` seconds. Entries are
bounded in number and in bytes (least recently used go first).

Only answers that depend on nothing but the key and the generation may be kept here.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any


class AnswerCache:
    def __init__(self, max_entries: int = 256, max_bytes: int = 64 * 1024 * 1024, ttl: float = 2.0):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._entries: OrderedDict[Any, tuple[int, float, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def clear(self) -> None:
        """Forget every entry (after changes made around the ORM, e.g. bulk loads)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def get(self, key: Any, generation: int) -> bytes | None:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != generation or now - entry[1] > self.ttl:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[2]

    def put(self, key: Any, generation: int, value: bytes) -> None:
        if len(value) > self.max_bytes // 4:
            return  # one answer may not crowd out the rest
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old[2])
            self._entries[key] = (generation, time.monotonic(), value)
            self._bytes += len(value)
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _key, (_gen, _at, dropped) = self._entries.popitem(last=False)
                self._bytes -= len(dropped)
