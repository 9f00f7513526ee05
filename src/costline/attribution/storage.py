"""Whose stored objects are, and what a storage bill line meters: shared by detection (zombie
storage of ended runs) and recommendations (storage tiering), so both decide alike.

- `newest_inventory`: each bucket's newest inventory snapshot before a day;
- `ended_run_objects`: the objects that belong to a run that ended (a key segment, or a run tag,
  equal to the run's id or name);
- `line_tier`: the storage tier (S3 class, Cloud Storage class, Azure access tier) a bill line
  charges for, and whether it charges for bytes stored or bytes retrieved.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from costline.attribution.rules import instance_text

LIVE_KINDS = ("inference_endpoint", "notebook")  # never "ended runs" whose outputs are waste
RUN_TAGS = ("run_id", "run", "job_id", "workload_id", "workload")
SCHEMES = {"AWS": "s3://", "Google Cloud": "gs://", "Microsoft": "az://", "Azure": "az://"}
OBJECT_COLUMNS = ("bucket", "provider", "key", "size_bytes", "object_count", "storage_class",
                  "snapshot_date", "last_modified", "last_accessed", "is_checkpoint")  # fmt: skip

# (provider, tier, pattern on a line's description, SKU and usage type), first match wins.
# AWS usage types (USE1-TimedStorage-SIA-ByteHrs, USE1-Retrieval-SIA), Cloud Storage SKUs
# ("Nearline Storage Iowa", "Nearline Data Retrieval"), Azure meters ("Cool LRS Data Stored").
_TIER_TEXT = (
    ("aws", "STANDARD_IA", r"-sia\b|standard[- ]ia\b|standard - infrequent"),
    ("aws", "GLACIER_IR", r"-gir\b|glacier instant"),
    ("aws", "DEEP_ARCHIVE", r"-gda\b|deep archive"),
    ("aws", "GLACIER", r"glacier"),
    ("aws", "STANDARD", r"timedstorage-bytehrs"),
    ("gcp", "NEARLINE", r"nearline"),
    ("gcp", "COLDLINE", r"coldline"),
    ("gcp", "ARCHIVE", r"archive"),
    ("gcp", "STANDARD", r"standard storage|regional storage"),
    ("azure", "Cool", r"\bcool\b"),
    ("azure", "Cold", r"\bcold\b"),
    ("azure", "Archive", r"\barchive\b"),
    ("azure", "Hot", r"\bhot\b"),
)
_PROVIDER = {"aws": r"(?i)^(aws|amazon)", "gcp": r"(?i)^(google|gcp)",
             "azure": r"(?i)^(microsoft|azure)"}  # fmt: skip
_GB_MONTH = r"(?i)^gi?b(y\.|[- /])?mo"
_GB = r"(?i)^gi?b(ytes?)?$"


def newest_inventory(objects: ir.Table, upto: dt.date) -> ir.Table:
    """Each bucket's newest inventory snapshot before `upto`: the objects as they are now."""
    objects = objects.filter(objects.snapshot_date < upto)
    newest = objects.group_by("bucket").aggregate(newest=objects.snapshot_date.max())
    o = objects.join(newest, [objects.bucket == newest.bucket,
                              objects.snapshot_date == newest.newest])  # fmt: skip
    return o.select(*OBJECT_COLUMNS, "tags")


def ended_run_objects(
    objects: ir.Table, workloads: ir.Table, ended_before: dt.datetime
) -> ir.Table:
    """The objects of `objects` (one snapshot, `OBJECT_COLUMNS` and `tags`) that belong to a run
    that ended before `ended_before`: a segment of the key, or a run tag (`RUN_TAGS`), equals
    the run's id or name (4 characters at least; endpoints and notebooks are never runs that
    ended). A name that a workload still running (or ended since) also bears says nothing (the
    objects may be that run's); an object several ended runs name belongs to one, by id before
    by name, then the last to end. Adds `wid` (the run's workload id) and `prefix` (the key up
    to and including the run's segment)."""
    o = objects
    cols = [*OBJECT_COLUMNS, "ident"]
    named = o.mutate(ident=o.key.split("/").unnest()).select(*cols)
    for k in RUN_TAGS:
        named = named.union(o.mutate(ident=o.tags.get(k)).select(*cols), distinct=False)
    done = workloads["end"].notnull() & (workloads["end"] < ended_before)
    w = workloads.filter(done, ~workloads.kind.fill_null("").isin(list(LIVE_KINDS)))
    live = workloads.filter(~done)
    if "source" in workloads.columns:  # a registry row declares work; it does not run
        live = live.filter(live.source.fill_null("") != "registry")
    by_name = w.filter(~w.name.isin(live.select("name").filter(live.name.notnull()).name))
    ids = w.select(wid=w.workload_id, ident=w.workload_id, by_id=ibis.literal(1), ended=w["end"])
    ids = ids.union(by_name.select(wid=by_name.workload_id, ident=by_name.name,
                                   by_id=ibis.literal(0), ended=by_name["end"]))  # fmt: skip
    ids = ids.filter(ids.ident.length() >= 4)
    j = named.join(ids, named.ident == ids.ident)
    j = j.mutate(rank=ibis.row_number().over(group_by=[j.bucket, j.key],
                                             order_by=[ibis.desc(j.by_id), ibis.desc(j.ended),
                                                       j.wid]))  # fmt: skip
    j = j.filter(j.rank == 0)
    return j.select(*OBJECT_COLUMNS, "wid",
                    prefix=j.key.substr(0, j.key.find(j.ident) + j.ident.length()))  # fmt: skip


def storage_uri(provider: str | None, bucket: str, prefix: str = "") -> str:
    """`s3://bucket/prefix` (gs:// for Google Cloud, az:// for Azure)."""
    return f"{SCHEMES.get(provider or '', 's3://')}{bucket}/{prefix}"


def line_tier(lines: ir.Table) -> ir.Table:
    """`lines` with `tier_provider` (aws, gcp, azure), `tier` and `meters` (`stored` for lines in
    GB-months, `retrieved` for retrieval lines in GB, else NULL) from what each line says about
    itself (description, SKU, usage type); NULL where it names no tier."""
    text = instance_text(lines).lower()
    provider = ibis.cases(*((lines.ProviderName.fill_null("").re_search(p), k)
                            for k, p in _PROVIDER.items()), else_=ibis.null("string"))  # fmt: skip
    tier = ibis.cases(
        *(((provider == p) & text.re_search(pattern), name) for p, name, pattern in _TIER_TEXT),
        else_=ibis.null("string"),
    )
    unit = lines.ConsumedUnit.fill_null(lines.PricingUnit if "PricingUnit" in lines.columns
                                        else ibis.literal(""))  # fmt: skip
    meters = ibis.cases(
        (text.re_search(r"retriev") & unit.re_search(_GB), "retrieved"),
        (unit.re_search(_GB_MONTH), "stored"),
        else_=ibis.null("string"),
    )
    return lines.mutate(tier_provider=provider, tier=tier, meters=meters)
