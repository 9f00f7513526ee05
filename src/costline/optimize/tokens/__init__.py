"""Token economics: what each prompt, output limit and cache choice costs, and what to change.

`costline recommend --kind tokens` audits the LLM requests of the window per group (app,
endpoint, provider, model, prompt and tenant; `audit`), with every dollar computed in the
engine at genai-prices' prices (`catalog.token_prices`), and recommends, each lever a finding:

| lever | module | what it saves |
|---|---|---|
| `recurring_prompt` | `prompt` | trimming the fixed prompt part by 30% |
| `prompt_caching` | `prompt`, `blocks` | reading the static prefix from the provider's cache |
| `output_limit`, `limit_truncation` | `output` | a per-task `max_tokens`; limits that cut answers |
| `context_window` | `context` | a rolling window of conversation history |
| `duplicate_calls` | `duplicates` | a response cache for identical prompts |

The method is docs/methodology/tokens.md.
"""

from __future__ import annotations

from costline.ledger import fetch
from costline.model import Finding
from costline.optimize.inputs import Inputs
from costline.optimize.tokens import blocks, context, duplicates, output, prompt
from costline.optimize.tokens.audit import KIND, Audit
from costline.optimize.tokens.plan import costed

__all__ = ["KIND", "recommend_tokens"]


def recommend_tokens(inputs: Inputs) -> list[Finding]:
    """Every lever's recommendations for the window's LLM requests, largest saving first."""
    audit = Audit.of(inputs)
    if audit is None:
        return []
    rows = audit.named(fetch.rows(costed(audit)))
    found = [
        *prompt.recurring(audit, rows),
        *prompt.caching(audit, rows, skip=blocks.keys(audit)),
        *blocks.caching(audit),
        *output.limits(audit, rows),
        *output.truncation(audit, rows),
        *context.windows(audit),
        *duplicates.duplicates(audit),
    ]
    return inputs.kept(found)
