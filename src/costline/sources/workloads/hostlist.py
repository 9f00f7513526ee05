"""Slurm host lists: `gpu-[01-03,07],login1` names five hosts (`scontrol show hostnames`)."""

from __future__ import annotations

import re

_GROUP = re.compile(r"\[([^\]]*)\]")


def expand(text: str | None) -> list[str]:
    """The host names a Slurm NodeList names, in order; `None` or `None assigned` names none.

    >>> expand("atlas-[0-2],eval-7")
    ['atlas-0', 'atlas-1', 'atlas-2', 'eval-7']
    """
    if not text or text.strip().lower() in ("none", "none assigned", "(null)", "unknown"):
        return []
    out: list[str] = []
    for item in _items(text.strip()):
        out.extend(_expand_one(item))
    return out


def _items(text: str) -> list[str]:
    """Split on commas outside brackets."""
    items: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "," and depth == 0:
            items.append("".join(current))
            current = []
            continue
        depth += {"[": 1, "]": -1}.get(ch, 0)
        current.append(ch)
    items.append("".join(current))
    return [i.strip() for i in items if i.strip()]


def _expand_one(item: str) -> list[str]:
    m = _GROUP.search(item)
    if m is None:
        return [item]
    head, tail = item[: m.start()], item[m.end() :]
    out = []
    for part in m.group(1).split(","):
        lo, sep, hi = part.strip().partition("-")
        if not sep:
            values = [lo]
        elif lo.isdigit() and hi.isdigit():
            width = len(lo) if lo.startswith("0") else 0
            values = [str(n).zfill(width) for n in range(int(lo), int(hi) + 1)]
        else:
            values = [part.strip()]
        for v in values:
            out.extend(_expand_one(head + v + tail))
    return out
