"""Which object keys are model checkpoints: configurable glob (or regex) patterns.

Patterns are matched case-insensitively against the whole object key. Globs: `*` and `?` stay inside
one path segment, `**` spans segments (`**/` may match nothing); a pattern without `/` matches the
key's last segment (`*.ckpt` matches `a/b/model.ckpt`). A pattern starting `re:` is a Python regular
expression searched anywhere in the key.

The defaults catch the layouts of the common trainers:

- `**/checkpoint*/**`: HF Trainer `checkpoint-500/`, `checkpoints/` (any `*.safetensors`, `*.pt`
  below them), Orbax `checkpoint_1000/`
- `**/ckpt*/**`: `ckpt/`, `ckpts/` folders (`*.pt` in `ckpt/`)
- `**/global_step*/**`: DeepSpeed ZeRO shards
- `*.ckpt`: PyTorch Lightning; `*.distcp`: torch.distributed.checkpoint shards

    >>> CheckpointMatcher().matches("runs/llama/checkpoint-500/model.safetensors")
    True
    >>> CheckpointMatcher().matches("datasets/train.parquet")
    False
"""

from __future__ import annotations

import re
from collections.abc import Sequence

DEFAULT_CHECKPOINT_PATTERNS = (
    "**/checkpoint*/**",
    "**/ckpt*/**",
    "**/global_step*/**",
    "*.ckpt",
    "*.distcp",
)


def glob_regex(pattern: str) -> str:
    """A key glob as a regular expression (see the module docstring for the rules)."""
    if pattern.startswith("re:"):
        return pattern[3:]
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    body = "".join(out)
    return f"^{body}$" if "/" in pattern else f"(?:^|/){body}$"


class CheckpointMatcher:
    """`matches(key)`: is the key under any of `patterns`?"""

    def __init__(self, patterns: Sequence[str] = DEFAULT_CHECKPOINT_PATTERNS) -> None:
        self.patterns = tuple(patterns)
        try:
            self._regex = re.compile(
                "|".join(f"(?:{glob_regex(p)})" for p in self.patterns) or r"(?!)", re.IGNORECASE
            )
        except re.error as exc:
            raise ValueError(f"bad checkpoint pattern: {exc}") from None

    def matches(self, key: str) -> bool:
        return self._regex.search(key) is not None
