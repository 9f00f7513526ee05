"""Bad input is refused, not stored: exit 2 naming the file, the row and the column, nothing written.

Each case here was accepted before (exit 0, rows stored) or refused without naming a row or a
column. Every file is written by the test; each goes through `costline ingest` after a good file,
and the ledger must be exactly as the good file left it.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from costline.cli.main import app
from costline.errors import EXIT_BAD_INPUT, IngestError
from costline.ledger.store import Ledger
from costline.sources import focus_checks
from tests.helpers import FOCUS_ROW, FOCUS_SAMPLE, run_costline, snapshot

BASE = {**FOCUS_ROW, "BilledCost": "1.5"}


def focus_csv(path: Path, rows: list[dict[str, str]], header: list[str] | None = None) -> Path:
    """A FOCUS CSV: the BASE row with each dict's changes (header-only when `rows` is empty)."""
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(header or list(BASE))
        for changes in rows:
            out.writerow({**BASE, **changes}.values())
    return path


def focus_parquet(path: Path, **columns: pa.Array) -> Path:
    """Three BASE rows as Parquet, with the columns given replaced by typed arrays."""
    data = {name: pa.array([value] * 3) for name, value in BASE.items()}
    data.update(columns)
    pq.write_table(pa.table(data), path)
    return path


def _gzip(path: Path) -> Path:
    packed = path.with_suffix(".csv.gz")
    packed.write_bytes(gzip.compress(path.read_bytes()))
    path.unlink()
    return packed


def ingest(ledger_url: str, *args: str) -> tuple[int, str]:
    """`costline --ledger URL ingest ...`: its exit code and what it printed or raised.

    The exit code of a costline error is the one `costline.cli.main.main` exits with."""
    result = CliRunner().invoke(app, ["--ledger", ledger_url, "ingest", *args, "-f", "json"])
    if isinstance(result.exception, IngestError):
        return result.exception.exit_code, str(result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    """A ledger already holding one good FOCUS file."""
    url = f"duckdb:///{tmp_path / 'ledger.duckdb'}"
    good = focus_csv(tmp_path / "good.csv", [{"BilledCost": "2", "BillingAccountId": "acct-9"}])
    assert ingest(url, "focus", str(good))[0] == 0
    return url


def refused(url: str, source: str, path: Path) -> IngestError:
    """Ingest `path` expecting exit 2 with the ledger unchanged; the error, to inspect."""
    with Ledger(url) as led:
        before = snapshot(led)
    result = CliRunner().invoke(app, ["--ledger", url, "ingest", source, str(path), "-f", "json"])
    error = result.exception
    assert isinstance(error, IngestError), (result.output, error)
    assert error.exit_code == EXIT_BAD_INPUT and error.path == str(path)
    with Ledger(url) as led:
        assert snapshot(led) == before
    return error


# -- cost files that were stored ---------------------------------------------------------------

ACCEPTED_BEFORE: dict[str, tuple[Callable[[Path], Path], int | None, str, str]] = {
    # case: (write the file, row, column, words of the message)
    "boolean cost column": (
        lambda d: focus_parquet(d / "bool.parquet", BilledCost=pa.array([True, False, True])),
        1,
        "BilledCost",
        "'true' is not a decimal number (the file's column is BOOLEAN)",
    ),
    "charge period ends before it starts": (
        lambda d: focus_csv(d / "end.csv", [{}, {"ChargePeriodEnd": "2026-10-04T00:00:00Z"}]),
        2,
        "ChargePeriodEnd",
        "ChargePeriodEnd 2026-10-04 00:00:00+00 is before ChargePeriodStart "
        "2026-10-05 00:00:00+00 (line 3)",
    ),
    "billing period ends before it starts": (
        lambda d: focus_csv(d / "bend.csv", [{"BillingPeriodEnd": "2026-09-01"}]),
        1,
        "BillingPeriodEnd",
        "is before BillingPeriodStart",
    ),
    "currency US$$": (
        lambda d: focus_csv(d / "cur.csv", [{}, {}, {"BillingCurrency": "US$$"}]),
        3,
        "BillingCurrency",
        "'US$$' is not an ISO 4217 currency code",
    ),
    "NUL byte in a field": (
        lambda d: focus_csv(d / "nul.csv", [{}, {"ServiceName": "Amazon\x00EC2"}]),
        2,
        "ServiceName",
        "'Amazon\\x00EC2' holds a NUL byte (line 3)",
    ),
    "NUL byte in Parquet text": (
        lambda d: focus_parquet(
            d / "nul.parquet", RegionId=pa.array(["us-east-1", None, "eu\x00"])
        ),
        3,
        "RegionId",
        "'eu\\x00' holds a NUL byte",
    ),
    "NUL byte in gzipped CSV": (
        lambda d: _gzip(focus_csv(d / "nul.csv", [{}, {}, {"ChargeCategory": "Us\x00age"}])),
        3,
        "ChargeCategory",
        "'Us\\x00age' holds a NUL byte (line 4)",
    ),
    "NUL byte in a tag": (
        lambda d: focus_csv(
            d / "nultag.csv",
            [{"Tags": '{"team": "ml"}'}, {"Tags": '{"team": "m\\u0000l"}'}],
            header=[*BASE, "Tags"],
        ),
        2,
        "Tags",
        "holds a NUL byte",
    ),
    "header only": (
        lambda d: focus_csv(d / "header.csv", []),
        1,
        "",
        "no data rows: the header is the whole file",
    ),
}


@pytest.mark.parametrize("case", list(ACCEPTED_BEFORE))
def test_bad_cost_file_is_refused_naming_row_and_column(
    case: str, ledger_url: str, tmp_path: Path
) -> None:
    write, row, column, words = ACCEPTED_BEFORE[case]
    error = refused(ledger_url, "focus", write(tmp_path))
    assert (error.row, error.column or "") == (row, column)
    assert words in str(error)


def test_a_column_named_twice_is_refused(ledger_url: str, tmp_path: Path) -> None:
    header = [*BASE, "BilledCost"]
    twice = tmp_path / "twice.csv"
    with twice.open("w", newline="") as fh:
        csv.writer(fh).writerows([header, [*BASE.values(), "9"]])
    error = refused(ledger_url, "focus", twice)
    assert error.column == "BilledCost"
    assert "names 'BilledCost' twice (columns 10 and 11)" in str(error)
    # The same in Parquet, and with a different case (DuckDB reads names case-insensitively).
    table = pa.table({**{k: [v] for k, v in BASE.items()}, "billedcost": ["9"]})
    error = refused(ledger_url, "focus", _parquet(tmp_path / "twice.parquet", table))
    assert error.column == "billedcost"


def _parquet(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path)
    return path


# -- errors that named no row or column --------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "row", "shown"),
    [
        ([1.0, float("nan"), 2.0], 2, "'nan'"),
        ([1.0, 2.0, float("inf")], 3, "'inf'"),
        ([1.0, 1e300, 2.0], 2, "'1e+300'"),
    ],
)
def test_parquet_float_cost_without_a_decimal_names_its_row(
    ledger_url: str, tmp_path: Path, values: list[float], row: int, shown: str
) -> None:
    path = focus_parquet(tmp_path / "float.parquet", BilledCost=pa.array(values, pa.float64()))
    error = refused(ledger_url, "focus", path)
    assert (error.row, error.column) == (row, "BilledCost")
    assert f"{shown} is not a decimal number" in str(error)


def test_parquet_integer_date_names_its_row(ledger_url: str, tmp_path: Path) -> None:
    dates = pa.array([None, 20261005, 20261006], pa.int64())
    path = focus_parquet(tmp_path / "intdate.parquet", ChargePeriodEnd=dates)
    error = refused(ledger_url, "focus", path)
    assert (error.row, error.column) == (2, "ChargePeriodEnd")
    assert "'20261005' is not a date-time" in str(error) and "column is BIGINT" in str(error)


@pytest.mark.parametrize(
    ("line", "cut", "column", "words"),
    [
        (11, "more", "field 45", "line 11 has more fields than the header's 44"),
        (901, "less", "BillingPeriodEnd", "line 901 has 5 fields where the header has 44"),
        (4000, "more", "field 45", "line 4000 has more fields than the header's 44"),
    ],
)
def test_ragged_csv_row_names_its_line(
    ledger_url: str, tmp_path: Path, line: int, cut: str, column: str, words: str
) -> None:
    """Within DuckDB's sniffing sample a ragged row made the file one column ("BilledCost
    missing"); past it, the scan stopped with the engine's message. Both now name the line."""
    header, *body = FOCUS_SAMPLE.read_text().splitlines()
    body = (body * 5)[: line + 10]
    fields = body[line - 2].split(",")
    body[line - 2] = ",".join([*fields, "extra"] if cut == "more" else fields[:5])
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join([header, *body]) + "\n")
    error = refused(ledger_url, "focus", path)
    assert (error.row, error.column) == (line - 1, column)
    assert words in str(error)


def test_the_cli_exits_2_on_bad_input(ledger_url: str, tmp_path: Path) -> None:
    """The real process, not the runner: exit status 2 and the message on stderr."""
    bad = focus_parquet(tmp_path / "bool.parquet", BilledCost=pa.array([True, False, True]))
    proc = run_costline("--ledger", ledger_url, "ingest", "focus", str(bad))
    assert proc.returncode == 2
    assert f"{bad}, row 1, column BilledCost: 'true' is not a decimal number" in proc.stderr


# -- GPU telemetry -----------------------------------------------------------------------------

LABELS = 'gpu="0",UUID="GPU-1",modelName="NVIDIA H100 80GB HBM3",Hostname="node-1"'


def scrape(values: list[str], metric: str = "DCGM_FI_DEV_GPU_UTIL") -> str:
    """One series of timestamped samples, 30 s apart, in the exposition text format."""
    return "".join(
        f"{metric}{{{LABELS}}} {v} {1_790_000_000_000 + 30_000 * i}\n" for i, v in enumerate(values)
    )


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (scrape(["5", "NaN", "7"]), 2, "NaN is not a reading"),
        (scrape(["5", "7", "-5"]), 3, "-5 is negative"),
        ("# HELP only\n" + scrape(["-1"], "DCGM_FI_DEV_POWER_USAGE"), 2, "-1 is negative"),
        # untimestamped: the general parser's own path
        (f"DCGM_FI_DEV_GPU_UTIL{{{LABELS}}} 40\nDCGM_FI_DEV_GPU_UTIL{{{LABELS}}} -5\n", 2, "-5"),
    ],
)
def test_dcgm_text_nan_or_negative_names_line_and_metric(
    ledger_url: str, tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = tmp_path / "scrape.prom"
    path.write_text(text)
    error = refused(ledger_url, "dcgm", path)
    assert error.row == line and str(error.column).startswith("DCGM_FI_DEV_")
    assert f"line {line}: " in str(error) and words in str(error)


def test_dcgm_metrics_we_do_not_keep_may_be_nan(ledger_url: str, tmp_path: Path) -> None:
    path = tmp_path / "clock.prom"
    path.write_text(scrape(["50", "60"]) + scrape(["NaN", "-1"], "DCGM_FI_DEV_SM_CLOCK"))
    code, out = ingest(ledger_url, "dcgm", str(path))
    assert code == 0 and '"rows": 2' in out


def test_dcgm_parquet_nan_or_negative_names_row_and_column(ledger_url: str, tmp_path: Path) -> None:
    times = pa.array([1_790_000_000, 1_790_000_030, 1_790_000_060], pa.int64())
    wide = pa.table(
        {"timestamp": times, "UUID": ["GPU-1"] * 3, "Hostname": ["node-1"] * 3,
         "DCGM_FI_DEV_GPU_UTIL": [40.0, 41.0, 42.0], "DCGM_FI_DEV_FB_USED": [1.0, -5.0, 3.0]}
    )  # fmt: skip
    error = refused(ledger_url, "dcgm", _parquet(tmp_path / "wide.parquet", wide))
    assert (error.row, error.column) == (2, "DCGM_FI_DEV_FB_USED")
    assert "-5 is negative" in str(error)
    long = pa.table(
        {"timestamp": times, "__name__": ["DCGM_FI_DEV_GPU_UTIL"] * 3, "UUID": ["GPU-1"] * 3,
         "value": [40.0, 41.0, float("nan")]}
    )  # fmt: skip
    error = refused(ledger_url, "dcgm", _parquet(tmp_path / "long.parquet", long))
    assert (error.row, error.column) == (3, "value") and "NaN is not a reading" in str(error)


@pytest.mark.parametrize("name", ["empty.prom", "comments.prom", "empty.parquet"])
def test_empty_telemetry_file_is_refused(ledger_url: str, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name == "empty.parquet":
        pq.write_table(
            pa.table({"timestamp": pa.array([], pa.int64()), "UUID": pa.array([], pa.string()),
                      "DCGM_FI_DEV_GPU_UTIL": pa.array([], pa.float64())}),
            path,
        )  # fmt: skip
    else:
        path.write_text("" if name == "empty.prom" else "# HELP DCGM_FI_DEV_GPU_UTIL x\n# EOF\n")
    error = refused(ledger_url, "dcgm", path)
    assert "no samples" in str(error)


@pytest.mark.parametrize("at", range(12))
def test_the_byte_scan_finds_a_nul_escape_cut_by_a_chunk_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at: int
) -> None:
    """Plain CSVs skip the per-row NUL check when their bytes hold none; the scan reads chunks."""
    monkeypatch.setattr(focus_checks, "_CHUNK", 8)
    path = tmp_path / "t.csv"
    path.write_bytes(b"x" * at + b'"{""a"": ""\\u0000""}"\n')
    assert not focus_checks.nul_free(str(path), "csv")
    path.write_bytes(b"x" * at + b'"{""a"": ""\\u00001""}\\n"\n'.replace(b"\\u0000", b"\\u0041"))
    assert focus_checks.nul_free(str(path), "csv")
