"""Env splitting: ``shlex.split`` against ``gpuyard.shellwords.split`` (a benchmark script, not a
test: it prints figures and checks only that both give the same words).

For each size (default 64 KiB, 256 KiB, 1 MiB) it times both splitters on:

- ``big word``: ``-e A=xxxx…``, one unquoted word of the whole size (12.9 s at 1 MB before);
- ``big quoted``: ``-e "B=yyyy…"``, one double-quoted word, a ``\\"`` escape every 64 characters;
- ``many words``: ``-e Vn=valuen -p n:n`` repeated, words of 2 to 17 characters.

``split`` runs ``--reps`` times and the best time is printed; ``shlex.split`` runs once at sizes
above 64 KiB (it takes seconds there). Run from the project root::

    .venv/bin/python bench/env_parse.py
    .venv/bin/python bench/env_parse.py --sizes 65536 --reps 20
"""

from __future__ import annotations

import argparse
import platform
import shlex
import time

from gpuyard.shellwords import split


def cases(size: int) -> dict[str, str]:
    one_word = "-e A=" + "x" * (size - 5)
    chunk = "y" * 62 + '\\"'
    quoted = '-e "B=' + (chunk * (size // len(chunk) + 1))[: size - 8] + '"'
    if quoted.endswith('\\"'):  # do not let the closing quote be escaped
        quoted = quoted[:-2] + 'yy"'
    words, n, length = [], 0, 0
    while length < size:
        words.append(f"-e V{n}=value{n} -p {n % 60000 + 1}:{n % 60000 + 1}")
        length += len(words[-1]) + 1
        n += 1
    many = " ".join(words)[:size].rsplit(" ", 1)[0]
    return {"big word": one_word, "big quoted": quoted, "many words": many}


def best(fn, text: str, reps: int) -> tuple[float, list[str]]:
    times, result = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        result = fn(text)
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64 * 1024, 256 * 1024, 1024 * 1024])
    ap.add_argument("--reps", type=int, default=5, help="timed runs of split (best is shown)")
    args = ap.parse_args()
    print(f"Python {platform.python_version()}; best of {args.reps} for split, "
          "shlex once above 64 KiB")
    print(f"{'case':<12} {'size':>9} {'words':>7} {'shlex.split':>12} {'split':>10} {'ratio':>8}")
    for size in args.sizes:
        for name, text in cases(size).items():
            shlex_reps = args.reps if size <= 64 * 1024 else 1
            t_shlex, expected = best(shlex.split, text, shlex_reps)
            t_split, words = best(split, text, args.reps)
            assert words == expected, f"{name} at {size}: the splitters disagree"
            print(f"{name:<12} {len(text):>9} {len(words):>7} {t_shlex * 1000:>10.1f} ms "
                  f"{t_split * 1000:>7.2f} ms {t_shlex / t_split:>7.0f}×")


if __name__ == "__main__":
    main()
