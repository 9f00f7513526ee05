"""Bucket lifecycle rules -> `storage_lifecycle`: which stored bytes will ever move or expire.

Checkpoints and datasets left in hot storage forever are the quiet half of AI storage spend; the
compliance report shows the share of storage under a lifecycle rule. The files are what the clouds'
own tools print:

- AWS: `aws s3api get-bucket-lifecycle-configuration --bucket B > B.lifecycle.json` (`{"Rules":
  [...]}`); the bucket is the file name's first part, or a top-level `"Bucket"` key. Rules with
  `Status: Enabled` count; their prefix is `Filter.Prefix`, `Filter.And.Prefix` or the legacy
  top-level `Prefix`; a rule that also needs object tags (`Filter.Tag`, `Filter.And.Tags`) is
  recorded as `filtered_by_tag`.
- GCS: `gcloud storage buckets describe gs://B --format=json` (`name` and `lifecycle_config` or
  `lifecycle`), or `gsutil lifecycle get gs://B > B.lifecycle.json` (`{"rule": [...]}`). A rule
  covers the prefixes of `condition.matchesPrefix`, else the whole bucket.

A bucket read with no rules gets one row with a null `rule_id`. Reading a bucket's rules again
replaces what was recorded for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from costline.errors import IngestError
from costline.sources.base import FileSource, SourceBatch, SourceFile, arrow_batch
from costline.sources.records import records_table

LIFECYCLE_SUFFIXES = (".json",)


def read_lifecycle(files: Sequence[SourceFile]) -> list[SourceBatch]:
    batches = []
    for f in files:
        try:
            doc = json.loads(f.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise IngestError(
                f"invalid JSON: {exc.msg}", path=str(f.path), row=exc.lineno
            ) from None
        if not isinstance(doc, dict):
            raise IngestError("expected a JSON object of lifecycle rules", path=str(f.path))
        provider, bucket, rows = _parse(doc, f)
        if not rows:
            rows = [{"rule_id": None, "prefix": "", "enabled": False, "filtered_by_tag": False}]
        table = records_table(
            "storage_lifecycle", [{"provider": provider, "bucket": bucket, **r} for r in rows]
        )
        batches.append(
            arrow_batch(
                "storage_lifecycle",
                f,
                table,
                dialect=f"{provider.lower()}-lifecycle",
                replace_on=("provider", "bucket"),
            )
        )
    return batches


def _bucket_from_name(f: SourceFile) -> str:
    name = f.path.name
    for suffix in (".lifecycle.json", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _parse(doc: Mapping[str, Any], f: SourceFile) -> tuple[str, str, list[dict[str, Any]]]:
    if "Rules" in doc:
        bucket = str(doc.get("Bucket") or _bucket_from_name(f))
        return "AWS", bucket, [_aws_rule(r, f, i) for i, r in enumerate(_list(doc, "Rules", f))]
    gcs = doc.get("lifecycle_config") or doc.get("lifecycle") or doc
    if isinstance(gcs, dict) and ("rule" in gcs or "lifecycle_config" in doc or "lifecycle" in doc):
        bucket = str(doc.get("name") or _bucket_from_name(f)).removeprefix("gs://")
        rules = _list(gcs, "rule", f) if "rule" in gcs else []
        return (
            "Google Cloud",
            bucket,
            [row for i, r in enumerate(rules) for row in _gcs_rule(r, f, i)],
        )
    raise IngestError(
        "not a lifecycle configuration: expected AWS's {\"Rules\": [...]} or GCS's "
        '{"rule": [...]} / {"lifecycle_config": ...}',
        path=str(f.path),
    )


def _list(doc: Mapping[str, Any], key: str, f: SourceFile) -> list[Any]:
    value = doc.get(key)
    if not isinstance(value, list):
        raise IngestError(f"{key} must be a list", path=str(f.path), column=key)
    return value


def _object(value: Any, f: SourceFile, where: str) -> dict[str, Any]:
    """`value` as a JSON object (absent or null: empty); anything else names `where`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise IngestError(f"{where} must be an object", path=str(f.path), column=where)
    return value


def _aws_rule(rule: Any, f: SourceFile, i: int) -> dict[str, Any]:
    if not isinstance(rule, dict):
        raise IngestError(f"Rules[{i}] must be an object", path=str(f.path), column=f"Rules[{i}]")
    status = rule.get("Status")
    if status not in ("Enabled", "Disabled"):
        raise IngestError(f"Rules[{i}].Status must be Enabled or Disabled (got {status!r})",
                          path=str(f.path), column=f"Rules[{i}].Status")  # fmt: skip
    filt = _object(rule.get("Filter"), f, f"Rules[{i}].Filter")
    both = _object(filt.get("And"), f, f"Rules[{i}].Filter.And")
    prefix = filt.get("Prefix", both.get("Prefix", rule.get("Prefix", ""))) or ""
    tagged = bool(filt.get("Tag") or both.get("Tags"))
    transitions = rule.get("Transitions") or []
    if not isinstance(transitions, list):
        raise IngestError(f"Rules[{i}].Transitions must be a list", path=str(f.path),
                          column=f"Rules[{i}].Transitions")  # fmt: skip
    actions = []
    for k, t in enumerate(transitions):
        t = _object(t, f, f"Rules[{i}].Transitions[{k}]")
        actions.append(f"transition {t.get('StorageClass')} after {t.get('Days', '?')}d")
    if "Expiration" in rule:
        e = _object(rule["Expiration"], f, f"Rules[{i}].Expiration")
        actions.append(f"expire after {e['Days']}d" if "Days" in e else "expire")
    if "NoncurrentVersionExpiration" in rule:
        actions.append("expire noncurrent versions")
    if "AbortIncompleteMultipartUpload" in rule:
        actions.append("abort incomplete uploads")
    return {"rule_id": str(rule.get("ID") or f"rule-{i}"), "prefix": str(prefix),
            "enabled": status == "Enabled", "filtered_by_tag": tagged,
            "actions": "; ".join(actions)}  # fmt: skip


def _gcs_rule(rule: Any, f: SourceFile, i: int) -> list[dict[str, Any]]:
    if not isinstance(rule, dict) or not isinstance(rule.get("action"), dict):
        raise IngestError(f"rule[{i}] must be an object with an action", path=str(f.path),
                          column=f"rule[{i}]")  # fmt: skip
    action, cond = rule["action"], _object(rule.get("condition"), f, f"rule[{i}].condition")
    text = str(action.get("type", "?"))
    if action.get("storageClass"):
        text += f" {action['storageClass']}"
    if "age" in cond:
        text += f" after {cond['age']}d"
    base = {"rule_id": f"rule-{i}", "enabled": True, "filtered_by_tag": False, "actions": text}
    prefixes = cond.get("matchesPrefix") or [""]
    if not isinstance(prefixes, list):
        raise IngestError(f"rule[{i}].condition.matchesPrefix must be a list", path=str(f.path),
                          column=f"rule[{i}].condition.matchesPrefix")  # fmt: skip
    return [{**base, "prefix": str(p)} for p in prefixes]


LIFECYCLE = FileSource("lifecycle", LIFECYCLE_SUFFIXES, read_lifecycle)
