"""Lever 2: context growth, in groups whose logs carry a conversation (or session, or thread) id.

A request's turn is the `turn` the log gives, else its place in its conversation by time (1 =
first). A client that re-sends the whole history makes every turn's input the previous turn's
plus one exchange. A **rolling window** of the last N exchanges (or a summary of the older ones)
keeps the input of every later turn at about the input of turn N+1: per conversation, a request
at turn t > N+1 saves its input less its conversation's input at turn N+1 (never below 0).
P50 for N = `WINDOW_TURNS`; the range is N = `WIDE` (low) and `NARROW` (high), measured in the
same pass. The tokens are priced at the group's input price, its cached share at the cache-read
price. A group is reported when its late turns' inputs are at least `GROWTH` x its first turns'.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.types as ir

from costline.ledger import fetch
from costline.model import Finding
from costline.optimize.recommend import Savings
from costline.optimize.tokens.audit import Audit, dec, key_hash, money, name_of, priced

WINDOW_TURNS = 6  # exchanges kept (P50)
WIDE = 10  # low: keep more
NARROW = 4  # high: keep fewer
GROWTH = 1.5


def _turns(audit: Audit) -> ir.Table:
    """The requests with a conversation id: group, conversation key, turn, input tokens. The
    turn is numbered by time only when some group's logs lack it (the one ordered pass)."""
    t = audit.requests
    t = t.filter(t.conversation_id.notnull(), t.calls == 1)
    t = t.select("gid", "us", "order", "turn", "input_tokens", "cached_input_tokens",
                 conversation=key_hash(ibis.literal(0, "uint64"), t.conversation_id))  # fmt: skip
    if all(g["turn_rows"] == g["conversation_rows"] for g in audit.groups):
        return t.rename(turn_="turn")
    order = ibis.window(group_by=[t.conversation], order_by=[t.us, t.order])
    return t.mutate(turn_=t.turn.fill_null(ibis.row_number().over(order) + 1)).drop("turn")


def per_conversation(audit: Audit) -> ir.Table:
    """Per group: conversations, the tokens each window saves, and the input of early and late
    turns. Each conversation's input at turn N+1 is an aggregate joined back (no sort)."""
    t = _turns(audit)
    windows = {"p50": WINDOW_TURNS, "low": WIDE, "high": NARROW}
    bases = t.group_by("conversation").aggregate(**{
        f"base_{k}": t.input_tokens.max(where=t.turn_ == n + 1) for k, n in windows.items()
    })  # fmt: skip
    t = t.join(bases, "conversation")
    saved = {k: ibis.ifelse((t.turn_ > n + 1) & t[f"base_{k}"].notnull(),
                            ibis.greatest(t.input_tokens - t[f"base_{k}"], 0), 0)
             for k, n in windows.items()}  # fmt: skip
    fresh = t.input_tokens - t.cached_input_tokens.fill_null(0)
    share = fresh.cast("float64") / ibis.greatest(t.input_tokens, 1).cast("float64")
    late = t.turn_ > WINDOW_TURNS + 1
    agg = t.group_by("gid").aggregate(
        conversations=t.conversation.nunique(), requests=t.count(),
        late_requests=late.sum(), max_turn=t.turn_.max(),
        early_input=t.input_tokens.mean(where=t.turn_ <= 2),
        late_input=t.input_tokens.mean(where=late),
        saved=saved["p50"].sum(), saved_low=saved["low"].sum(), saved_high=saved["high"].sum(),
        saved_fresh=(saved["p50"] * share).sum(), saved_fresh_low=(saved["low"] * share).sum(),
        saved_fresh_high=(saved["high"] * share).sum(),
    )  # fmt: skip
    p = priced(agg, audit.prices)

    def usd(total: ir.NumericValue, fresh_part: ir.NumericValue) -> ir.NumericValue:
        return money(fresh_part, p.input_price) + money(total - fresh_part, p.read_price)

    return p.mutate(
        usd=usd(p.saved, p.saved_fresh), usd_low=usd(p.saved_low, p.saved_fresh_low),
        usd_high=usd(p.saved_high, p.saved_fresh_high),
    )  # fmt: skip


def windows(audit: Audit) -> Iterator[Finding]:
    """One finding per group whose conversations' context grows (see the module)."""
    if not any(g["conversation_rows"] for g in audit.groups):
        return
    for r in audit.named(fetch.rows(per_conversation(audit))):
        early, late = float(r["early_input"] or 0), float(r["late_input"] or 0)
        saving = dec(r["usd"])
        if saving > 0 and early and late >= GROWTH * early:
            yield _finding(audit, r, early, late, saving)


def _finding(
    audit: Audit, r: dict[str, Any], early: float, late: float, saving: Decimal
) -> Finding:
    name = name_of(r)
    low, high = dec(r["usd_low"]), dec(r["usd_high"])
    return audit.finding(
        r, lever="context_window",
        title=f"{name}: conversations re-send their history (input {early:,.0f} tokens at "
        f"turns 1-2, {late:,.0f} after turn {WINDOW_TURNS + 1})",
        summary=(
            f"{r['conversations']:,} conversations of {name} ran up to {r['max_turn']} turns, "
            f"and each turn's input carried the whole history. Keeping the last {WINDOW_TURNS} "
            f"exchanges (or a summary of the older ones) would have sent {int(r['saved']):,} "
            f"fewer input tokens on {int(r['late_requests']):,} requests."
        ),
        current=dec(r["cost"]), savings=Savings(saving, min(low, saving), max(high, saving)),
        method=f"per conversation, input at turn t > N+1 less the input at turn N+1, N = "
        f"{WINDOW_TURNS} ({WIDE}-{NARROW} for the range), at the input price",
        inputs={"conversations": r["conversations"], "max_turn": r["max_turn"],
                "input_turns_1_2": round(early), f"input_after_turn_{WINDOW_TURNS + 1}":
                round(late), "late_requests": r["late_requests"], "tokens_saved": r["saved"],
                "window_turns": WINDOW_TURNS},
        coverage=int(r["requests"] or 0) / max(int(r["single"] or 0), 1),
        risk="medium: answers that need older turns lose them; a summary keeps the gist",
        action=f"Send {name} only the last {WINDOW_TURNS} exchanges of a conversation, with a "
        "short summary of the older ones (refreshed every few turns) in their place.",
    )  # fmt: skip
