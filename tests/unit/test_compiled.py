"""SQL compiled once per query shape (`costline.ledger.compiled`): a query asked again with other
dates, other value lists or other kept tables gets the SQL compiling it gives, without compiling."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import ibis
import pytest

from costline.ledger import compiled, fetch

UTC = dt.UTC


@pytest.fixture
def con() -> Iterator[Any]:
    backend = ibis.duckdb.connect()
    backend.raw_sql("SET TimeZone = 'UTC'").fetchall()
    backend.raw_sql(
        "CREATE TABLE t AS SELECT TIMESTAMPTZ '2026-10-01 00:00:00+00' + INTERVAL (i) HOUR AS ts, "
        "'v' || (i % 5) AS k, i AS n FROM range(240) r(i)"
    ).fetchall()
    compiled._shapes.clear()
    yield backend
    compiled._shapes.clear()


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch, con: Any) -> list[Any]:
    """Every expression the compiler is asked to turn into SQL."""
    seen: list[Any] = []
    kind = type(con.compiler)
    original = kind.to_sqlglot

    def counting(self: Any, expr: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(expr)
        return original(self, expr, *args, **kwargs)

    monkeypatch.setattr(kind, "to_sqlglot", counting)
    return seen


def _query(t: ibis.Table, start: dt.datetime, end: dt.datetime, keys: list[str]) -> ibis.Table:
    t = t.filter(t.ts >= start, t.ts < end, ibis.literal(keys, type="array<string>").contains(t.k))
    return (
        t.group_by(day=t.ts.date(), k=t.k)
        .aggregate(n=t.n.sum())
        .filter(lambda g: g.day >= start.date())
    )


def test_the_third_ask_of_a_shape_compiles_nothing_and_gives_the_compilers_sql(
    con: Any, compiles: list[Any]
) -> None:
    t = con.table("t")
    days = [dt.datetime(2026, 10, d, tzinfo=UTC) for d in (1, 2, 3, 4, 5)]
    for n, (start, end) in enumerate(itertools.pairwise(days)):
        expr = _query(t, start, end, ["v1", "v3"] if n % 2 else ["v2"])
        compiles.clear()
        text = compiled.sql(con, expr)
        # the first ask compiles it, the second also the sentinel version, then none
        assert len(compiles) == [1, 2, 0, 0][n]
        assert text == con.compile(expr)
        rows = con.con.execute(text).fetchall()
        assert rows == con.con.execute(con.compile(expr)).fetchall() and rows


def test_one_literal_used_twice_and_two_equal_literals_are_different_shapes(con: Any) -> None:
    """`start` used for both bounds one day is one literal; two days later the bounds differ:
    the template of the first must not serve the second."""
    t = con.table("t")
    same = dt.datetime(2026, 10, 2, tzinfo=UTC)
    for _ in range(3):
        expr = t.filter(t.ts >= same, t.ts < same)
        assert compiled.sql(con, expr) == con.compile(expr)
    expr = t.filter(t.ts >= same, t.ts < same + dt.timedelta(days=1))
    assert compiled.sql(con, expr) == con.compile(expr)
    assert fetch.value(expr.count()) == 24


def test_kept_tables_are_named_in_the_sql_of_each_run(con: Any) -> None:
    t = con.table("t")
    for day in (1, 2, 3, 4):
        start = dt.datetime(2026, 10, day, tzinfo=UTC)
        with contextlib.ExitStack() as stack:
            kept = fetch.kept(stack, t.filter(t.ts >= start, t.ts < start + dt.timedelta(days=1)))
            expr = kept.aggregate(n=kept.n.sum())
            assert compiled.sql(con, expr) == con.compile(expr)
            assert fetch.value(kept.n.sum()) == sum(range((day - 1) * 24, day * 24))


def test_a_template_that_does_not_give_the_compilers_sql_is_never_used(
    con: Any, monkeypatch: pytest.MonkeyPatch, compiles: list[Any]
) -> None:
    """Should a literal's SQL read otherwise inside a query than alone, the template would be
    wrong: it is checked against the compiler once, and refused."""
    real = compiled._render
    monkeypatch.setattr(compiled, "_render", lambda b, x: real(b, x).replace("MAKE", "make"))
    t = con.table("t")
    for day in (1, 2, 3, 4):
        start = dt.datetime(2026, 10, day, tzinfo=UTC)
        expr = t.filter(t.ts >= start)
        compiles.clear()
        text = compiled.sql(con, expr)
        assert compiles  # compiled every time
        assert text == con.compile(expr)
    assert [s.refused for s in compiled._shapes.values()] == [True]
