"""Date-times as providers write them, parsed in SQL without guessing.

DuckDB's own cast reads `5/1/25` as the year 5, so a format is chosen by the shape of the text:
ISO 8601 (`2024-09-18 22:00:00`, `2023-01-01T00:00:00Z`, offsets, fractions) through the cast, US
dates (`5/1/25`, `05/01/2025 13:00`) through strptime. Text without a zone is UTC, as FOCUS says.
"""

from __future__ import annotations

# ISO 8601 allows 24:00 for the end of a day; the FOCUS 1.2 spec's own examples go on to 30:00
# (a 10-hour period starting at 20:00). Hours 24-47 roll over into the next day; nothing else does.
ROLLOVER = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ](2[4-9]|3[0-9]|4[0-7]):[0-5][0-9](:[0-5][0-9])?Z?$"

US_4 = ["%m/%d/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p"]
US_2 = ["%m/%d/%y", "%m/%d/%y %H:%M", "%m/%d/%y %H:%M:%S"]


def _formats(formats: list[str]) -> str:
    return "[" + ", ".join(f"'{f}'" for f in formats) + "]"


def parse_sql(src: str, *, strict: bool) -> str:
    """SQL turning the text `src` into TIMESTAMPTZ; strict raises on bad text, else gives NULL."""
    strptime = "strptime" if strict else "try_strptime"
    fallback = f"error('costline: bad date-time ' || {src})" if strict else "NULL"
    rollover = (
        f"CAST(left({src}, 10) AS DATE)::TIMESTAMPTZ"
        f" + to_hours(CAST(substr({src}, 12, 2) AS INTEGER))"
        f" + to_minutes(CAST(substr({src}, 15, 2) AS INTEGER))"
        f" + to_seconds(coalesce(TRY_CAST(substr({src}, 18, 2) AS INTEGER), 0))"
    )
    iso = (
        f"coalesce(TRY_CAST({src} AS TIMESTAMPTZ), CASE WHEN regexp_full_match({src}, '{ROLLOVER}') "
        f"THEN {rollover} ELSE {fallback} END)"
    )
    return (
        f"CASE WHEN {src} IS NULL THEN NULL "
        f"WHEN {src} LIKE '____-__-__%' THEN {iso} "
        f"WHEN {src} LIKE '%/%/____' OR {src} LIKE '%/%/____ %' "
        f"THEN CAST({strptime}({src}, {_formats(US_4)}) AS TIMESTAMPTZ) "
        f"WHEN {src} LIKE '%/%/__' OR {src} LIKE '%/%/__ %' "
        f"THEN CAST({strptime}({src}, {_formats(US_2)}) AS TIMESTAMPTZ) "
        f"ELSE {fallback} END"
    )
