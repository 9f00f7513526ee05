"""The lifecycle rule that carries out a storage recommendation, in each provider's own format.

- AWS: an S3 lifecycle configuration (`aws s3api put-bucket-lifecycle-configuration`); a put
  replaces the bucket's whole configuration, so the rules are merged into the existing ones;
- Google Cloud: a Cloud Storage lifecycle configuration (`gcloud storage buckets update
  --lifecycle-file`), which also replaces the bucket's rules;
- Azure: a storage account management policy (`az storage account management-policy create`),
  whose prefixes start with the container.

Every rule acts on objects older than `days` (days since their last write: what all three
evaluate without access tracking) under one prefix; a deletion is a rule too, and on every
provider a deletion wins over a transition that falls due the same day.

    >>> rules("gcp", "ckpt", [Move("run-7/step-100/", None, 30)])["rule"][0]["action"]
    {'type': 'Delete'}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_AZURE = {"Cool": "tierToCool", "Cold": "tierToCold", "Archive": "tierToArchive"}
_HOW = {
    "aws": "Merge into the S3 lifecycle configuration of s3://{bucket} (a put replaces every "
    "existing rule): ",
    "gcp": "Merge into the lifecycle configuration of gs://{bucket} (an update replaces every "
    "existing rule): ",
    "azure": "Add to the management policy of the storage account holding container {bucket}: ",
}


@dataclass(frozen=True)
class Move:
    """Objects under `prefix` older than `days` go to `tier`, or are deleted (tier None)."""

    prefix: str
    tier: str | None
    days: int


def rules(provider: str, bucket: str, moves: Sequence[Move]) -> dict[str, Any]:
    """The lifecycle configuration of `moves` for `provider` (aws, gcp, azure)."""
    if provider == "aws":
        return {"Rules": [_aws(i, m) for i, m in enumerate(moves)]}
    if provider == "gcp":
        return {"rule": [_gcp(m) for m in moves]}
    if provider == "azure":
        return {"rules": [_azure(i, bucket, m) for i, m in enumerate(moves)]}
    raise ValueError(f"no lifecycle rule format for provider {provider!r}")


def action_text(provider: str, bucket: str, moves: Sequence[Move]) -> str:
    """What to do, with the rule as compact JSON."""
    body = json.dumps(rules(provider, bucket, moves), separators=(",", ":"))
    return _HOW[provider].format(bucket=bucket) + body


def _name(i: int, m: Move) -> str:
    return f"costline-{'expire' if m.tier is None else m.tier.lower()}-{i + 1}"


def _aws(i: int, m: Move) -> dict[str, Any]:
    rule: dict[str, Any] = {"ID": _name(i, m), "Status": "Enabled", "Filter": {"Prefix": m.prefix}}
    if m.tier is None:
        rule["Expiration"] = {"Days": m.days}
    else:
        rule["Transitions"] = [{"Days": m.days, "StorageClass": m.tier}]
    return rule


def _gcp(m: Move) -> dict[str, Any]:
    condition = {"age": m.days, "matchesPrefix": [m.prefix]}
    if m.tier is None:
        return {"action": {"type": "Delete"}, "condition": condition}
    return {"action": {"type": "SetStorageClass", "storageClass": m.tier}, "condition": condition}


def _azure(i: int, container: str, m: Move) -> dict[str, Any]:
    verb = "delete" if m.tier is None else _AZURE[m.tier]
    return {
        "enabled": True,
        "name": _name(i, m),
        "type": "Lifecycle",
        "definition": {
            "filters": {"blobTypes": ["blockBlob"], "prefixMatch": [f"{container}/{m.prefix}"]},
            "actions": {"baseBlob": {verb: {"daysAfterModificationGreaterThan": m.days}}},
        },
    }
