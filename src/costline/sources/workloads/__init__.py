"""Workloads: what ran (Kubernetes pods, Slurm jobs) and what people declared (the registry).

Each adapter maps its format to `workloads` rows; `source` says which: kubernetes, slurm, registry.
"""

from __future__ import annotations

from costline.sources.base import FileSource
from costline.sources.workloads.kubernetes import read_kubernetes
from costline.sources.workloads.registry import read_registry, registry_state
from costline.sources.workloads.slurm import read_slurm

SLURM_SUFFIXES = (".txt", ".psv", ".sacct", ".log")

KUBERNETES = FileSource("kubernetes", (".json",), read_kubernetes)
SLURM = FileSource("slurm", SLURM_SUFFIXES, read_slurm)
REGISTRY = FileSource("registry", (".yaml", ".yml"), read_registry, state_of=registry_state)

__all__ = ["KUBERNETES", "REGISTRY", "SLURM", "SLURM_SUFFIXES"]
