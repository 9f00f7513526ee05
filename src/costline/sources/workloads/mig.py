"""MIG (Multi-Instance GPU) slices as fractions of a whole GPU.

The NVIDIA device plugin's mixed strategy exposes resources such as `nvidia.com/mig-1g.10gb`. A
profile `<g>g.<mem>gb` takes `g` of the GPU's compute slices: A100 and H100/H200 (and B200) have 7,
so `1g.10gb` is 1/7 of a GPU, `3g.40gb` 3/7 and `7g.80gb` the whole GPU. The A30 has 4 slices; its
profiles are recognised by their memory sizes (`1g.6gb`, `2g.12gb`, `4g.24gb`) and count as g/4.
Variants with media extensions (`1g.10gb+me`) count like the base profile.

    >>> fraction_of_resource("nvidia.com/mig-1g.10gb")
    Fraction(1, 7)
    >>> fraction_of_resource("nvidia.com/mig-2g.12gb")
    Fraction(1, 2)
"""

from __future__ import annotations

import re
from fractions import Fraction

SLICES_PER_GPU = 7
A30_SLICES = 4
A30_PROFILES = frozenset({(1, 6), (2, 12), (4, 24)})

_RESOURCE = re.compile(r"^nvidia\.com/mig-(\d+)g\.(\d+)gb(\+me)?$")
_PROFILE = re.compile(r"^(?:mig-)?(\d+)g\.(\d+)gb(\+me)?$")


def fraction_of_profile(profile: str) -> Fraction | None:
    """`1g.10gb` (or `mig-1g.10gb`) -> Fraction(1, 7); None when it is not a MIG profile."""
    m = _PROFILE.match(profile.strip().lower())
    return None if m is None else _fraction(int(m.group(1)), int(m.group(2)))


def fraction_of_resource(resource: str) -> Fraction | None:
    """`nvidia.com/mig-3g.40gb` -> Fraction(3, 7); None for any other resource name."""
    m = _RESOURCE.match(resource.strip().lower())
    return None if m is None else _fraction(int(m.group(1)), int(m.group(2)))


def _fraction(slices: int, memory_gb: int) -> Fraction:
    total = A30_SLICES if (slices, memory_gb) in A30_PROFILES else SLICES_PER_GPU
    return Fraction(min(slices, total), total)
