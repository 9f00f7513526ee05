"""Build `src/costline/catalog/data/storage_prices.csv`, object-storage list prices, from public tables.

    uv run python tools/build_storage_prices.py --data ../shared/data/prices

Reads, at build time only (the product reads the built file, never this):
- `gcp/pricing_<date>_<commit>.yml` (Cyclenerd's Google Cloud price list, its newest version):
  `storage.bucket.<class>.cost.<location>.month` (USD per GB-month) and
  `storage.retrieval.<class>.cost.<location>.month` (USD per GB read, filed under `month` by the
  list) for the classes standard, nearline, coldline and archive (`archiv` in the list), in
  regions, dual-regions (`-dual`: asia1, eur4, nam4) and multi-regions (`-multi`: us-multi,
  europe-multi, asia-multi, written as Cloud Storage names them: US, EU, ASIA).

Prices are copied as text. The reference data holds no object-storage price for AWS or Azure:
the catalog has no row for them, and costline prices their tiers from the organization's own
bills, else reports them unpriced.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import catalog_csv  # tools/catalog_csv.py, beside this script
import yaml

CLASSES = {"standard": "STANDARD", "nearline": "NEARLINE", "coldline": "COLDLINE",
           "archiv": "ARCHIVE"}  # fmt: skip
MULTI = {"us-multi": "US", "europe-multi": "EU", "asia-multi": "ASIA"}
HEADER = ("provider", "location", "tier", "price_usd_per_gb_month", "retrieval_usd_per_gb",
          "as_of", "source")  # fmt: skip
_GENERATED = re.compile(r"pricing_(\d{4}-\d{2}-\d{2})_")


def _storage_section(path: Path) -> dict[str, Any]:
    """The list's top-level `storage:` mapping, every scalar kept as its text (BaseLoader)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index("storage:")
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"^[a-z]", lines[i])),
               len(lines))  # fmt: skip
    loaded: dict[str, Any] = yaml.load("\n".join(lines[start:end]), Loader=yaml.BaseLoader)
    return loaded["storage"]


def _gcp(path: Path) -> Iterator[tuple[str, ...]]:
    found = _GENERATED.search(path.name)
    if found is None:
        raise SystemExit(f"{path}: expected a name like pricing_2026-07-30_fd66b26.yml")
    as_of = found.group(1)
    storage = _storage_section(path)
    for key, tier in CLASSES.items():
        for suffix in ("", "-dual", "-multi"):
            stored = storage["bucket"].get(key + suffix, {}).get("cost", {})
            read = storage["retrieval"].get(key + suffix, {}).get("cost", {})
            for location, price in stored.items():
                where = MULTI.get(location, location.upper() if suffix == "-dual" else location)
                retrieval = read.get(location, {}).get("month", "0" if tier == "STANDARD" else "")
                yield ("gcp", where, tier, price["month"], retrieval, as_of, "cyclenerd-gcp")


def build(data: Path) -> list[tuple[str, ...]]:
    newest = max((data / "gcp").glob("pricing_*.yml"))
    return sorted(set(_gcp(newest)))


if __name__ == "__main__":
    catalog_csv.main(
        __doc__ or "",
        "storage_prices.csv",
        "object-storage price catalog",
        HEADER,
        build,
        "build_storage_prices.py",
    )
