"""The DuckDB fast path gives the same rows as the general parser, and declines what it can't read."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from costline.sources.base import SourceFile
from costline.sources.dcgm import read_dcgm_text
from costline.sources.dcgm_source import read_dcgm_file
from costline.sources.dcgm_sql import read_dcgm_sql

H100 = 'modelName="NVIDIA H100 80GB HBM3",Hostname="node-a"'
A100 = 'modelName="NVIDIA A100-SXM4-80GB",Hostname="node-b"'


def _exposition(t_ms: int) -> str:
    lines = []
    for metric, value in (
        ("DCGM_FI_DEV_GPU_UTIL", "97"),
        ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "0.93"),
        ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "0.61"),
        ("DCGM_FI_DEV_FB_USED", "71000"),
        ("DCGM_FI_DEV_FB_FREE", "10000"),
        ("DCGM_FI_DEV_POWER_USAGE", "612.5"),
    ):
        lines.append(f"# TYPE {metric} gauge")
        # A training pod on GPU 0 (exported_pod wins over the scrape target's pod label).
        lines.append(
            f'{metric}{{gpu="0",UUID="GPU-0",device="nvidia0",{H100},namespace="monitoring",pod="dcgm-exporter-x",exported_namespace="ml",exported_pod="train-1",container="main"}} {value} {t_ms}'
        )
        # GPU 1 time-sliced by two pods, plus a device-level series with nobody on it.
        for pod in ("nb-1", "nb-2"):
            lines.append(
                f'{metric}{{gpu="1",UUID="GPU-1",device="nvidia1",{H100},namespace="lab",pod="{pod}",container="jupyter"}} {value} {t_ms}'
            )
        # GPU 2 idle: only the exporter's own pod label (not a workload).
        idle = "9223372036854775794" if metric == "DCGM_FI_DEV_POWER_USAGE" else "0"
        lines.append(
            f'{metric}{{gpu="2",UUID="GPU-2",device="nvidia2",{H100},pod="dcgm-exporter-x"}} {idle} {t_ms}'
        )
        # Two MIG slices on an A100.
        for gi in ("1", "2"):
            lines.append(
                f'{metric}{{gpu="0",UUID="GPU-9",device="nvidia0",{A100},GPU_I_PROFILE="3g.40gb",GPU_I_ID="{gi}",namespace="serve",pod="llm-{gi}",container="srv"}} {value} {t_ms}'
            )
    lines.append(
        f'DCGM_FI_DEV_FB_FREE{{gpu="1",UUID="GPU-1",device="nvidia1",{H100}}} 12000 {t_ms}'
    )
    lines.append(f'unrelated_metric{{job="x"}} 1 {t_ms}')
    return "\n".join(lines) + "\n"


def _rows(table: pa.Table) -> list[tuple[object, ...]]:
    return sorted(tuple(r.values()) for r in table.to_pylist())


def test_fast_path_equals_the_general_parser(tmp_path: Path) -> None:
    path = tmp_path / "scrapes.txt"
    path.write_text(_exposition(1_761_955_200_000) + _exposition(1_761_955_260_000))
    file = SourceFile.of(path)
    fast = read_dcgm_sql(file)
    assert fast is not None
    slow = read_dcgm_text(file)
    assert _rows(fast.reader().read_all()) == _rows(slow.reader().read_all())
    table = fast.reader().read_all()
    assert table.num_rows == 2 * 6  # train-1, nb-1, nb-2, idle GPU-2, two MIG slices; two scrapes
    shares = {r["pod"]: r["time_slice_share"] for r in table.to_pylist()}
    assert shares["nb-1"] == shares["nb-2"] == 0.5 and shares["train-1"] == 1.0
    assert fast.warnings == slow.warnings


@pytest.mark.parametrize(
    "text",
    [
        'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-0"} 5\n',  # no timestamp: the scrape time is guessed
        'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-0",pod="a\\"b"} 5 1761955200000\n',  # escapes
        'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-0"} five 1761955200000\n',  # bad value: named by line
    ],
)
def test_fast_path_declines_what_the_general_parser_handles(tmp_path: Path, text: str) -> None:
    path = tmp_path / "odd.txt"
    path.write_text(text)
    assert read_dcgm_sql(SourceFile.of(path)) is None
    if "five" in text:
        with pytest.raises(Exception, match="line 1"):
            read_dcgm_file(SourceFile.of(path))
