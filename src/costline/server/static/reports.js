/* costline dashboard: the report pages (showback, chargeback, unit costs); see costline.js.
 * Each reads the same JSON as `costline report ... --format json` and shows it as it is: no
 * figure is recomputed here, only formatted (money exactly, from its decimal string). */
"use strict";

(() => {
  const C = Costline;
  const el = C.el;
  const body = document.body;
  // The special buckets of an allocation (docs/methodology/allocation.md), explained on hover.
  const SPECIAL = {
    __idle__: "GPU-time provisioned that no workload held",
    __shared__: "the shared platform, not charged to anyone",
    __unallocated__: "spend with no owner tag",
  };
  const BY_LABEL = { cost_domain: "cost domain", domain: "cost domain" };

  function bucket(name) {
    const title = SPECIAL[name];
    return title ? el("span", { className: "special", title }, name) : name;
  }

  function ignoredNote(ignored) {
    const node = document.getElementById("report-ignored");
    if (!node) return;
    node.hidden = !(ignored || []).length;
    node.textContent = node.hidden ? "" : "Not applied here: " + ignored.join(", ") + ". A report splits the whole bill " +
      "(a GPU host's cost goes to whoever held its GPUs, whatever its tags); provider, service and region narrow it.";
  }

  // -- Showback and chargeback ----------------------------------------------------------------
  async function report(current) {
    const kind = body.dataset.kind;
    const by = C.param("by", "team");
    const params = { by, cost: C.param("cost", "effective") };
    if (kind === "showback") params.idle = C.param("idle", "shown");
    const data = await C.get(kind, params);
    if (!current()) return;
    const rows = data.rows || [];
    C.setText("report-by-label", BY_LABEL[by] || by);
    C.setText("report-total", "total " + C.usd(data.total_usd) + " · " + data.start + " to " + data.end + " (end excluded)");
    ignoredNote(data.ignored_filters);
    const names = rows.map((r) => String(r[by]));
    // Only the parts this report can have: idle shared in (chargeback, or showback with idle
    // shared) and the shared platform (chargeback); showback keeps them as buckets.
    const idleIn = kind === "chargeback" || params.idle === "shared";
    const sharedIn = kind === "chargeback";
    // What a bucket got from its pools' unheld GPU-time: its amount less its direct and shared
    // parts (exact, in scaled integers; numbers only to draw).
    const idleShare = (r) => (C.dec(r.amount_usd) ?? 0n) - (C.dec(r.direct_usd) ?? 0n) - (C.dec(r.shared_usd) ?? 0n);
    const part = (value, name, color) => ({
      type: "bar", orientation: "h", name, y: names, x: rows.map(value),
      marker: { color }, hovertemplate: "%{y}<br>" + name + " $%{x:,.2f}<extra></extra>",
    });
    const parts = [part((r) => C.number(r.direct_usd), "direct", C.COLORS[0])];
    if (idleIn) parts.push(part((r) => Number(idleShare(r)) / 1e18, "idle GPU shared in", C.COLORS[3]));
    if (sharedIn) parts.push(part((r) => C.number(r.shared_usd), "shared platform", C.COLORS[1]));
    const height = Math.max(320, 26 * rows.length + 110);
    C.plot("chart-report", rows.length ? parts : [], { barmode: "relative", height, showlegend: parts.length > 1,
      margin: { l: 180, r: 20, t: 10, b: 60 }, xaxis: { tickprefix: "$", separatethousands: true },
      yaxis: { automargin: true, autorange: "reversed", type: "category" } });
    document.getElementById("chart-report").style.height = height + "px";
    const columns = [
      { label: BY_LABEL[by] || by, value: (r) => bucket(r[by]) },
      { label: "Amount", num: true, value: (r) => C.usd(r.amount_usd) },
      { label: "Direct", num: true, value: (r) => C.usd(r.direct_usd) },
    ];
    if (sharedIn) columns.push({ label: "Shared platform", num: true, value: (r) => C.usd(r.shared_usd) });
    columns.push(
      { label: "Share", num: true, value: (r) => C.pct(r.share_pct, 2) },
      { label: "GPU-hours held", num: true, value: (r) => C.count(r.gpu_hours) },
      { label: "Held idle GPU-h", num: true, value: (r) => C.count(r.held_idle_gpu_hours) },
      { label: "Held idle $", num: true, value: (r) => C.usd(r.held_idle_usd) },
      { label: "Unheld GPU-h", num: true, value: (r) => C.count(r.unheld_idle_gpu_hours) },
      { label: "Unheld $", num: true, value: (r) => C.usd(r.unheld_idle_usd) },
    );
    C.table("report-table", columns, rows);
  }

  // -- Unit costs -----------------------------------------------------------------------------
  function signedPct(value) {
    const n = C.number(value);
    return n === null ? C.NONE : (n > 0 ? "+" : "") + n.toFixed(1) + "%";
  }

  function changeCls(value) {
    const n = C.number(value);
    return n === null || n === 0 ? "" : n > 0 ? "up" : "down";
  }

  /** A scorecard figure in its unit. */
  function figure(value, unit) {
    if (value === null || value === undefined) return C.NONE;
    if (unit === "USD") return C.usd(value, 4);
    if (unit === "%") return C.pct(value);
    if (unit === "ms") return C.count(value) + " ms";
    if (unit === "jobs") return C.count(value);
    return C.number(value).toLocaleString("en-US", { maximumFractionDigits: 2 });
  }

  const change = (key, label) => ({ label, num: true, value: (r) => signedPct(r[key]), cls: (r) => changeCls(r[key]) });

  async function unitCosts(current) {
    const data = await C.get("unit-costs", { cost: C.param("cost", "effective") });
    if (!current()) return;
    C.setText("units-period", data.period + " · change against " + data.previous.start + " to " + data.previous.end);
    ignoredNote(data.ignored_filters);
    const said = data.sentences || [];
    document.getElementById("unit-sentences").replaceChildren(...(said.length ? said.map((s) => el("li", {}, s))
      : [el("li", { className: "note" }, "No endpoint, training run or LLM app with a cost in this period.")]));
    const card = data.scorecard || [];
    C.table("scorecard-table", [
      { label: "Figure", value: (r) => r.label },
      { label: "This period", num: true, value: (r) => figure(r.value, r.unit) },
      { label: "Last 7 days", num: true, value: (r) => figure(r.last_7_days, r.unit) },
      change("week_over_week_pct", "Week over week"),
      { label: "Month before", num: true, value: (r) => figure(r.month_before, r.unit) },
      change("month_over_month_pct", "Month over month"),
    ], card);
    const labels = card.map((r) => r.label);
    const changed = card.some((r) => C.number(r.week_over_week_pct) !== null || C.number(r.month_over_month_pct) !== null);
    C.plot("chart-scorecard", changed ? [
      { type: "bar", name: "week over week", x: labels, y: card.map((r) => C.number(r.week_over_week_pct)),
        marker: { color: C.COLORS[0] }, hovertemplate: "%{x}<br>%{y:+.1f}% week over week<extra></extra>" },
      { type: "bar", name: "month over month", x: labels, y: card.map((r) => C.number(r.month_over_month_pct)),
        marker: { color: C.COLORS[1] }, hovertemplate: "%{x}<br>%{y:+.1f}% month over month<extra></extra>" },
    ] : [], Object.assign({ barmode: "group", yaxis: { ticksuffix: "%", zeroline: true }, margin: { l: 60, r: 20, t: 10, b: 120 } },
      changed ? {} : { annotations: [{ text: "Nothing to compare with yet: no figure has a week or a month before it",
        showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5, font: { size: 13, color: "#5d6878" } }] }));
    const s = data.sections || {};
    C.table("units-llm", [
      { label: "Model", value: (r) => r.model }, { label: "App", value: (r) => r.app },
      { label: "Requests", num: true, value: (r) => C.count(r.requests) },
      { label: "Success", num: true, value: (r) => C.pct(r.success_pct, 2) },
      { label: "Cost", num: true, value: (r) => C.usd(r.cost_usd) },
      { label: "Per 1K requests", num: true, value: (r) => C.usd(r.per_1k_requests_usd, 4) },
      { label: "Per successful request", num: true, value: (r) => C.usd(r.per_success_usd, 6) },
      { label: "Per 1K tokens", num: true, value: (r) => C.usd(r.per_1k_tokens_usd, 4) },
      { label: "Cache hits", num: true, value: (r) => C.pct(r.cache_hit_pct) },
      change("change_pct", "Change (per 1K requests)"),
    ], s.llm || []);
    C.table("units-outcomes", [
      { label: "App", value: (r) => r.app }, { label: "Model", value: (r) => r.model ?? "(all)" },
      { label: "Outcome", value: (r) => String(r.outcome || "").replaceAll("_", " ") },
      { label: "Outcomes", num: true, value: (r) => C.count(r.outcomes) },
      { label: "Of requests", num: true, value: (r) => C.pct(r.outcome_pct, 2) },
      { label: "Cost", num: true, value: (r) => C.usd(r.cost_usd) },
      { label: "Per outcome", num: true, value: (r) => r.per_outcome_usd === null ? C.NONE : C.usd(r.per_outcome_usd, 6) },
      change("change_pct", "Change (per outcome)"),
    ], s.llm_outcomes || []);
    C.table("units-declared", [
      { label: "Name", value: (r) => r.name }, { label: "Kind", value: (r) => String(r.kind || "").replaceAll("_", " ") },
      { label: "Team", value: (r) => r.team },
      { label: "Cost", num: true, value: (r) => C.usd(r.cost_usd) },
      { label: "Inferences", num: true, value: (r) => C.count(r.inferences) },
      { label: "Per 1K inferences", num: true, value: (r) => r.per_1k_inferences_usd === null ? C.NONE : C.usd(r.per_1k_inferences_usd, 4) },
      { label: "Per prediction", num: true, value: (r) => r.per_success_usd === null ? C.NONE : C.usd(r.per_success_usd, 6) },
      { label: "Budget used", num: true, value: (r) => C.pct(r.budget_used_pct) },
      { label: "Telemetry", num: true, value: (r) => C.pct(r.coverage_pct) },
      change("change_pct", "Change (cost)"),
    ], s.declared || []);
    C.table("units-workloads", [
      { label: "Workload", value: (r) => r.workload }, { label: "Kind", value: (r) => r.kind ? r.kind.replaceAll("_", " ") : C.NONE },
      { label: "Team", value: (r) => r.team },
      { label: "GPU-hours", num: true, value: (r) => C.count(r.gpu_hours) },
      { label: "Cost", num: true, value: (r) => C.usd(r.cost_usd) },
      { label: "Per GPU-hour", num: true, value: (r) => C.usd(r.per_gpu_hour_usd) },
      { label: "Held idle", num: true, value: (r) => C.pct(r.held_idle_pct) },
      { label: "SM active", num: true, value: (r) => C.pct(r.sm_active_pct) },
      { label: "Telemetry", num: true, value: (r) => C.pct(r.coverage_pct) },
      change("change_pct", "Change (cost)"),
    ], s.workloads || []);
    C.table("units-pools", [
      { label: "Pool", value: (r) => r.pool ?? "(none)" },
      { label: "GPU cost", num: true, value: (r) => C.usd(r.gpu_cost_usd) },
      { label: "GPUs", num: true, value: (r) => C.count(r.gpus) },
      { label: "Unheld idle", num: true, value: (r) => C.usd(r.unheld_idle_usd) + " (" + C.pct(r.unheld_idle_pct) + ")" },
      { label: "Held idle", num: true, value: (r) => C.usd(r.held_idle_usd) + " (" + C.pct(r.held_idle_pct) + ")" },
      change("change_pct", "Change (GPU cost)"),
    ], s.pools || []);
    C.table("units-business", [
      { label: "Unit", value: (r) => r.unit }, { label: "Units", num: true, value: (r) => C.count(r.units) },
      { label: "Cost", num: true, value: (r) => C.usd(r.cost_usd) },
      { label: "Per unit", num: true, value: (r) => r.per_unit_usd === null ? C.NONE : C.usd(r.per_unit_usd, 4) },
      change("change_pct", "Change"),
    ], s.business_units || [], "No business units are configured (units: in costline.yaml).");
  }

  // -- Start the page -------------------------------------------------------------------------
  const LOADERS = { showback: report, chargeback: report, "unit-costs": unitCosts };
  const load = LOADERS[body.dataset.page];
  if (load) {
    const reload = C.start(load);
    C.bindSelect("report-by", "by", reload);
    C.bindSelect("report-idle", "idle", reload);
    C.bindSelect("report-cost", "cost", reload);
  }
})();
