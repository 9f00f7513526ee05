"""`costline ingest dcgm`: real dcgm-exporter scrapes, label spellings, MIG, sentinels, time-slicing."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from costline.errors import IngestError
from costline.ledger.store import Ledger
from costline.pipeline import ingest_files
from costline.schema import GPU_SAMPLES
from costline.sources.base import SourceFile
from costline.sources.dcgm import identify, parse_exposition, reading
from costline.sources.dcgm_source import DCGM, dcgm_source, read_dcgm_file
from tests.helpers import FIXTURES

DCGM_DIR = FIXTURES / "dcgm"
DATADOG = DCGM_DIR / "datadog-integrations-core__dcgm__tests__fixtures__metrics.txt"
LABEL_REMAP = DCGM_DIR / "datadog-integrations-core__dcgm__tests__fixtures__label_remap.txt"
README_K8S = DCGM_DIR / "dcgm-exporter__readme-kubernetes-quickstart.txt"
AT = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
UUID = "GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52"


def series(metric: str, value: str, ts: str = "", **labels: str) -> str:
    """One sample line in the label order of dcgm-exporter's render_metrics.go template."""
    base = {
        "gpu": "0",
        "UUID": UUID,
        "pci_bus_id": "00000000:07:00.0",
        "device": "nvidia0",
        "modelName": "NVIDIA H100 80GB HBM3",
        "hostname": "gpu-node-1",
    }
    base.update(labels)
    text = ",".join(f'{k}="{v}"' for k, v in base.items() if v is not None)
    return f"{metric}{{{text}}} {value}" + (f" {ts}" if ts else "")


def rows_of(
    tmp_path: Path, lines: list[str], name: str = "scrape.txt", **opts: Any
) -> list[dict[str, Any]]:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    batch = read_dcgm_file(SourceFile.of(path), **{"at": AT, **opts})
    return sorted(
        batch.reader().read_all().to_pylist(),
        key=lambda r: (r["ts"], r["gpu_uuid"] or "", r["mig_instance_id"] or "", r["pod"] or ""),
    )


def test_datadog_scrape_gives_one_row_per_gpu_with_its_values() -> None:
    batch = read_dcgm_file(SourceFile.of(DATADOG), at=AT)
    rows = {r["gpu_uuid"]: r for r in batch.reader().read_all().to_pylist()}
    assert set(rows) == {
        "GPU-20c56d28-0da5-6d26-a36a-e7af1ce2586e",
        "GPU-9ef1b6d0-3643-5dd7-b823-c0ec20dcf2d5",
        "GPU-abc",
    }
    t4 = rows["GPU-20c56d28-0da5-6d26-a36a-e7af1ce2586e"]
    assert (t4["host"], t4["gpu_model"], t4["gpu_index"]) == ("424773df46e0", "Tesla T4", 0)
    assert (t4["power_w"], t4["gpu_util"], t4["fb_used_mib"]) == (8.969, 0.0, 0.0)
    assert t4["fb_total_mib"] == 15109.0  # FB_USED 0 + FB_FREE 15109
    assert t4["ts"] == AT and t4["sample_seconds"] == 30.0 and t4["source"] == "dcgm-file"
    # Only FB_TOTAL on this one: taken as reported.
    assert rows["GPU-9ef1b6d0-3643-5dd7-b823-c0ec20dcf2d5"]["fb_total_mib"] == 15109.0
    a10g = rows["GPU-abc"]
    assert (a10g["namespace"], a10g["pod"], a10g["container"]) == (
        "ray-llm",
        "ray-1111111",
        "ray-worker",
    )
    assert a10g["gpu_model"] == "NVIDIA A10G" and a10g["host"] == "ip-11111"
    assert a10g["dram_active"] is not None and 0 <= a10g["dram_active"] <= 1
    # The fixture's unlabelled dummy series name no GPU: skipped, and said so.
    assert batch.warnings and "DCGM_FI_PROF_GR_ENGINE_ACTIVE" in batch.warnings[0]


def test_label_remap_scrape_carries_the_pod() -> None:
    rows = read_dcgm_file(SourceFile.of(LABEL_REMAP), at=AT).reader().read_all().to_pylist()
    assert len(rows) == 1
    assert (rows[0]["namespace"], rows[0]["pod"], rows[0]["container"]) == ("foo", "bar", "baz")
    assert rows[0]["host"] == "424773df46e0" and rows[0]["gpu_util"] == 0.0


def test_readme_scrape_parses_spaces_empty_pods_and_the_blank_sentinel() -> None:
    with README_K8S.open() as fh:
        samples = list(parse_exposition(fh, str(README_K8S)))
    assert [s.name for s in samples] == [
        "DCGM_FI_DEV_SM_CLOCK",
        "DCGM_FI_DEV_MEM_CLOCK",
        "DCGM_FI_DEV_MEMORY_TEMP",
    ]
    assert samples[0].labels["UUID"] == UUID and samples[0].value == 139
    who = identify(samples[0].labels)
    assert who is not None and who[1].empty  # pod="" is nobody
    assert samples[2].value == float(9223372036854775794) and reading(samples[2].value, 1.0) is None
    # None of these metrics is a gpu_samples column: the file parses to no rows.
    assert read_dcgm_file(SourceFile.of(README_K8S), at=AT).reader().read_all().num_rows == 0


def test_hostname_spellings_and_exported_pod(tmp_path: Path) -> None:
    rows = rows_of(
        tmp_path,
        [
            series("DCGM_FI_DEV_GPU_UTIL", "50", hostname="node-a"),
            series(
                "DCGM_FI_DEV_GPU_UTIL",
                "20",
                hostname=None,
                Hostname="node-b",
                gpu="1",
                UUID="GPU-b",
                device="nvidia1",
            ),
            # Prometheus renamed the exporter's pod labels: exported_* is the workload's.
            series(
                "DCGM_FI_DEV_GPU_UTIL",
                "70",
                gpu="2",
                UUID="GPU-c",
                device="nvidia2",
                pod="dcgm-exporter-x",
                namespace="gpu-operator",
                exported_pod="trainer-0",
                exported_namespace="ml",
                exported_container="main",
            ),
            # An idle GPU scraped through a ServiceMonitor: the pod is the exporter's own.
            series(
                "DCGM_FI_DEV_GPU_UTIL",
                "0",
                gpu="4",
                UUID="GPU-e",
                device="nvidia4",
                pod="nvidia-dcgm-exporter-7xk2p",
                namespace="gpu-operator",
                container="nvidia-dcgm-exporter",
            ),
            # No gpu label: the index comes from `device`.
            series("DCGM_FI_DEV_POWER_USAGE", "300.5", gpu=None, UUID="GPU-d", device="nvidia3"),
        ],
    )
    by_uuid = {r["gpu_uuid"]: r for r in rows}
    assert by_uuid[UUID]["host"] == "node-a"
    assert by_uuid["GPU-b"]["host"] == "node-b" and by_uuid["GPU-b"]["gpu_index"] == 1
    c = by_uuid["GPU-c"]
    assert (c["namespace"], c["pod"], c["container"]) == ("ml", "trainer-0", "main")
    e = by_uuid["GPU-e"]
    assert (e["namespace"], e["pod"], e["container"]) == (None, None, None)
    assert by_uuid["GPU-d"]["gpu_index"] == 3 and by_uuid["GPU-d"]["power_w"] == 300.5


def test_percent_becomes_ratio_and_ratios_stay(tmp_path: Path) -> None:
    (row,) = rows_of(
        tmp_path,
        [
            series("DCGM_FI_DEV_GPU_UTIL", "37"),
            series("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "0.25"),
            series("DCGM_FI_PROF_SM_ACTIVE", "0.2"),
            series("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "0.1"),
            series("DCGM_FI_PROF_DRAM_ACTIVE", "0.05"),
            series("DCGM_FI_DEV_FB_USED", "1000"),
            series("DCGM_FI_DEV_FB_FREE", "80000"),
            series("DCGM_FI_DEV_FB_RESERVED", "559"),
        ],
    )
    assert row["gpu_util"] == pytest.approx(0.37)
    assert (row["gr_engine_active"], row["sm_active"], row["tensor_active"]) == (0.25, 0.2, 0.1)
    assert row["dram_active"] == 0.05
    assert (row["fb_used_mib"], row["fb_total_mib"]) == (1000.0, 81559.0)


def test_blank_sentinels_and_infinity_are_null(tmp_path: Path) -> None:
    (row,) = rows_of(
        tmp_path,
        [
            series("DCGM_FI_DEV_GPU_UTIL", "9223372036854775794"),
            series("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "140737488355328"),
            series("DCGM_FI_DEV_FB_USED", "18446744073709551615"),
            series("DCGM_FI_DEV_FB_FREE", "2147483632"),
            series("DCGM_FI_DEV_POWER_USAGE", "+Inf"),
            series("DCGM_FI_PROF_SM_ACTIVE", "0.5"),
        ],
    )
    assert row["gpu_util"] is None and row["gr_engine_active"] is None
    assert row["fb_used_mib"] is None and row["fb_total_mib"] is None
    assert row["power_w"] is None and row["sm_active"] == 0.5


def test_mig_slices_are_rows_of_their_own(tmp_path: Path) -> None:
    mig = {"GPU_I_PROFILE": "3g.40gb"}
    rows = rows_of(
        tmp_path,
        [
            series(
                "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "0.9", GPU_I_ID="1", **mig, pod="a", namespace="ml"
            ),
            series(
                "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "0.1", GPU_I_ID="2", **mig, pod="b", namespace="ml"
            ),
            series("DCGM_FI_DEV_FB_USED", "20000", GPU_I_ID="1", **mig, pod="a", namespace="ml"),
        ],
    )
    assert [(r["mig_profile"], r["mig_instance_id"], r["pod"]) for r in rows] == [
        ("3g.40gb", "1", "a"),
        ("3g.40gb", "2", "b"),
    ]
    assert [r["gr_engine_active"] for r in rows] == [0.9, 0.1]
    assert [r["time_slice_share"] for r in rows] == [1.0, 1.0]  # slices are not time-sliced
    assert rows[0]["fb_used_mib"] == 20000.0 and rows[1]["fb_used_mib"] is None


def test_time_sliced_gpu_is_counted_once(tmp_path: Path) -> None:
    lines = []
    for ts, pods in (("1777636800000", ["p1", "p2"]), ("1777636830000", ["p1", "p2", "p3"])):
        for pod in pods:
            lines.append(
                series("DCGM_FI_DEV_GPU_UTIL", "80", ts, pod=pod, namespace="inf", container="srv")
            )
            lines.append(
                series(
                    "DCGM_FI_DEV_POWER_USAGE", "250", ts, pod=pod, namespace="inf", container="srv"
                )
            )
        lines.append(
            series("DCGM_FI_DEV_GPU_UTIL", "40", ts, gpu="1", UUID="GPU-solo", device="nvidia1")
        )
    rows = rows_of(tmp_path, lines)
    shares: dict[tuple[dt.datetime, str], float] = {}
    for r in rows:
        shares[(r["ts"], r["gpu_uuid"])] = (
            shares.get((r["ts"], r["gpu_uuid"]), 0) + r["time_slice_share"]
        )
    assert all(s == pytest.approx(1.0) for s in shares.values()) and len(shares) == 4
    first = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
    at_first = [r for r in rows if r["ts"] == first and r["gpu_uuid"] == UUID]
    assert [(r["pod"], r["time_slice_share"]) for r in at_first] == [("p1", 0.5), ("p2", 0.5)]
    assert all(r["gpu_util"] == 0.8 and r["power_w"] == 250 for r in at_first)
    later = [
        r for r in rows if r["ts"] == first + dt.timedelta(seconds=30) and r["gpu_uuid"] == UUID
    ]
    assert [r["time_slice_share"] for r in later] == [pytest.approx(1 / 3)] * 3
    # Millisecond timestamps 30 s apart: the sample interval is read from them.
    assert {r["sample_seconds"] for r in rows} == {30.0}


def test_device_series_without_pod_fill_the_pod_rows(tmp_path: Path) -> None:
    rows = rows_of(
        tmp_path,
        [
            series("DCGM_FI_DEV_GPU_UTIL", "10", pod="p", namespace="n"),
            series("DCGM_FI_DEV_POWER_USAGE", "99"),  # device-wide, no pod
        ],
    )
    assert [(r["pod"], r["gpu_util"], r["power_w"], r["time_slice_share"]) for r in rows] == [
        ("p", 0.1, 99.0, 1.0)
    ]


def test_openmetrics_seconds_and_concatenated_untimestamped_scrapes(tmp_path: Path) -> None:
    om = rows_of(
        tmp_path,
        [
            "# TYPE DCGM_FI_DEV_GPU_UTIL gauge",
            series("DCGM_FI_DEV_GPU_UTIL", "1", "1777636800"),
            series("DCGM_FI_DEV_GPU_UTIL", "2", "1777636815.5"),
            "# EOF",
        ],
        name="om.txt",
    )
    assert [r["ts"] for r in om] == [AT, AT + dt.timedelta(seconds=15.5)]
    assert om[0]["sample_seconds"] == 15.5
    # Three scrapes without timestamps: the last is at --at, the others 60 s apart before it.
    scrape = [series("DCGM_FI_DEV_GPU_UTIL", "5"), series("DCGM_FI_DEV_POWER_USAGE", "100")]
    plain = rows_of(tmp_path, scrape * 3, name="plain.txt", sample_seconds=60.0)
    assert [r["ts"] for r in plain] == [AT - dt.timedelta(seconds=s) for s in (120, 60, 0)]
    assert all(r["power_w"] == 100 for r in plain)


def test_file_time_defaults_to_mtime(tmp_path: Path) -> None:
    path = tmp_path / "scrape.prom"
    path.write_text(series("DCGM_FI_DEV_GPU_UTIL", "5") + "\n")
    stamp = dt.datetime(2026, 3, 1, tzinfo=dt.UTC).timestamp()
    os.utime(path, (stamp, stamp))
    (row,) = read_dcgm_file(SourceFile.of(path)).reader().read_all().to_pylist()
    assert row["ts"] == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="x"} 1\nDCGM_FI_DEV_GPU_UTIL{gpu="0" 5\n', 2),
        ("# HELP x\n\nDCGM_FI_DEV_GPU_UTIL{gpu=0} 5\n", 3),
        ('DCGM_FI_DEV_GPU_UTIL{gpu="0"} five\n', 1),
        ('DCGM_FI_DEV_GPU_UTIL{gpu="0"} 1 2 3\n', 1),
        ("{} 1\n", 1),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(IngestError) as info:
        read_dcgm_file(SourceFile.of(path), at=AT)
    assert info.value.row == line and info.value.exit_code == 2
    assert str(path) in str(info.value) and f"line {line}:" in str(info.value)


def test_ingest_lands_in_the_ledger_and_again_is_a_duplicate(
    ledger: Ledger, tmp_path: Path
) -> None:
    gz = tmp_path / "scrape.txt.gz"
    with DATADOG.open("rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    summary = ingest_files(ledger, [DATADOG, LABEL_REMAP, gz], dcgm_source(at=AT))
    assert summary.rows == 3 + 1 + 3
    assert [f.status for f in summary.files] == ["ingested"] * 3
    assert summary.files[0].notes  # the skipped unlabelled series, as a data-quality note
    again = ingest_files(ledger, [DATADOG, LABEL_REMAP], DCGM)
    assert again.rows == 0 and again.duplicates == [str(DATADOG), str(LABEL_REMAP)]
    assert ledger.con.execute("SELECT count(*) FROM gpu_samples").fetchall() == [(7,)]
    stored = ledger.table("gpu_samples").schema()
    assert dict(stored.items()) == dict(GPU_SAMPLES.items())
    row = ledger.con.execute(
        "SELECT host, pod, gpu_util, power_w, fb_total_mib, ts, time_slice_share, source "
        "FROM gpu_samples WHERE pod = 'bar'"
    ).fetchone()
    assert row == ("424773df46e0", "bar", 0.0, None, None, AT, 1.0, "dcgm-file")


def test_exposition_syntax_escapes_exemplars_and_trailing_commas() -> None:
    from costline.sources.dcgm import parse_line

    name, labels, value, ts = parse_line(
        'DCGM_FI_DEV_GPU_UTIL{ pod="a\\"b\\\\c" , UUID="GPU-1",} 5 1777636800 # {trace_id="x"} 1'
    )
    assert (name, labels, value, ts) == (
        "DCGM_FI_DEV_GPU_UTIL",
        {"pod": 'a"b\\c', "UUID": "GPU-1"},
        5.0,
        1_777_636_800_000_000,
    )
    assert parse_line("DCGM_FI_DEV_POWER_USAGE 1e2") == ("DCGM_FI_DEV_POWER_USAGE", {}, 100.0, None)
