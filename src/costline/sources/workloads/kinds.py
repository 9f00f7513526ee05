"""The workload kinds costline knows, and the label and tag words that name them.

Users say what a workload is with a label (Kubernetes) or a tag (Slurm `--comment`/`--wckey`, the
registry's `tags`). The first of `KIND_KEYS` present is read, and its value is mapped through
`KIND_WORDS` (case-insensitive): `workload-type: training` -> `training_run`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import get_args

from costline.sources.workloads.registry import Kind

KINDS = (*get_args(Kind), "pod")  # what the registry declares, and a plain pod

# Label / tag keys that name the kind, in order of preference.
KIND_KEYS = (
    "costline.io/workload-type",
    "costline.io/kind",
    "workload-type",
    "workload_type",
    "workload-kind",
    "kind",
    "type",
)

KIND_WORDS: dict[str, str] = {
    **{k: k for k in KINDS},
    "training": "training_run",
    "train": "training_run",
    "pretraining": "training_run",
    "sweep": "sweep_trial",
    "hpo": "sweep_trial",
    "fine-tune": "fine_tune",
    "finetune": "fine_tune",
    "fine_tuning": "fine_tune",
    "finetuning": "fine_tune",
    "inference": "inference_endpoint",
    "serving": "inference_endpoint",
    "endpoint": "inference_endpoint",
    "online-inference": "inference_endpoint",
    "batch": "batch_job",
    "batch-inference": "batch_job",
    "jupyter": "notebook",
    "pipeline": "pipeline_stage",
}

# Owner labels / tags, in order of preference.
OWNER_KEYS = ("costline.io/owner", "owner", "team", "app.kubernetes.io/team")


def kind_from_labels(labels: Mapping[str, str]) -> str | None:
    """The kind a label or tag declares, or None when none does (or the word is unknown)."""
    for key in KIND_KEYS:
        value = labels.get(key)
        if value:
            found = KIND_WORDS.get(value.strip().lower())
            if found is not None:
                return found
    return None


def owner_from_labels(labels: Mapping[str, str]) -> str | None:
    for key in OWNER_KEYS:
        value = labels.get(key)
        if value:
            return value
    return None
