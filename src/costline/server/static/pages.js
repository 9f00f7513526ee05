/* costline dashboard, one loader per page (body[data-page]); see costline.js for the helpers.
 * Each loader fetches the /api/v1 JSON for the URL's filters and draws its charts and tables.
 * `current()` says whether this load is still the latest; a stale one draws nothing. */
"use strict";

(() => {
  const C = Costline;
  const el = C.el;
  const body = document.body;
  // What the overview counts as active anomalies (the findings page offers the same choices).
  const ANOMALIES = "anomaly|spike|threshold_breach";
  const ACTIVE = "open|acknowledged";
  const MAX_SERIES = 12; // series drawn one by one; the rest are summed as "(other)"

  function keyLabel(key) {
    return key === null || key === undefined || key === "" ? "(none)" : String(key);
  }

  /** "team=a, model=b" from a scope given as a mapping, or the text itself. */
  function scopeText(scope) {
    if (scope === null || scope === undefined) return "";
    if (typeof scope !== "object") return String(scope);
    return Object.entries(scope).map(([k, v]) => k + "=" + v).join(", ");
  }

  function changeClass(row) {
    const d = C.dec(row.change_usd);
    return d === null || d === 0n ? "" : d > 0n ? "up" : "down";
  }

  // -- Overview -----------------------------------------------------------------------------
  async function overview(current) {
    const [o, notes] = await Promise.all([C.get("overview"), C.get("annotations")]);
    if (!current()) return;
    C.setText("as-of", o.as_of ? "as of " + o.as_of + ", the last billed day" : "");
    C.setText("today", C.usd(o.today_usd));
    C.setText("today-day", o.as_of || C.NONE);
    C.setText("mtd", C.usd(o.month_to_date_usd));
    const meter = document.getElementById("budget-meter");
    if (o.budget_usd !== null && o.budget_usd !== undefined) {
      C.setText("mtd-budget", "of " + C.usd(o.budget_usd) + " budget (" + C.pctOf(o.month_to_date_usd, o.budget_usd) + ")");
      const used = Number(o.month_to_date_usd) / Number(o.budget_usd) * 100;
      meter.hidden = false;
      meter.className = "meter" + (used >= 100 ? " over" : used >= 80 ? " warn" : "");
      meter.firstElementChild.style.width = Math.min(Math.max(used, 0), 100).toFixed(1) + "%";
    } else {
      C.setText("mtd-budget", "no budget matches these filters");
      meter.hidden = true;
    }
    const f = o.month_end_forecast;
    C.setText("forecast-p50", f ? C.usd(f.p50) : C.NONE);
    C.setText("forecast-range", f ? "P10 " + C.usd(f.p10) + " · P90 " + C.usd(f.p90) : "not enough history to forecast");
    C.setText("anomalies", C.count(o.active_anomalies));
    C.setText("open-findings", C.count(o.open_findings) + " open findings");
    document.getElementById("anomalies").href = C.link("/findings", { status: ACTIVE, kind: ANOMALIES });
    document.getElementById("open-findings").href = C.link("/findings", { status: "open" });
    dailyChart(o.daily || [], notes.rows || []);
    const movers = o.top_movers || {};
    moversTable("movers-week", movers.week_over_week || []);
    moversTable("movers-month", movers.month_over_month || []);
  }

  function dailyChart(daily, notes) {
    const x = daily.map((d) => d.day);
    const y = daily.map((d) => C.number(d.cost_usd));
    const traces = [{ type: "scatter", mode: "lines+markers", name: "spend", x, y,
      line: { color: C.COLORS[0], width: 2 }, hovertemplate: "%{x}<br>$%{y:,.2f}<extra></extra>" }];
    const shapes = [];
    if (x.length) {
      const first = x[0];
      const last = x[x.length - 1] + "T23:59:59Z";
      const inside = notes.filter((n) => n.ts && n.ts.slice(0, 10) >= first && n.ts <= last);
      const top = Math.max(0, ...y.filter((v) => v !== null)) * 1.06 || 1;
      for (const n of inside) {
        shapes.push({ type: "line", xref: "x", yref: "paper", x0: n.ts, x1: n.ts, y0: 0, y1: 1,
          line: { color: "#8c8c8c", width: 1, dash: "dot" } });
      }
      if (inside.length) {
        traces.push({ type: "scatter", mode: "markers", name: "annotations",
          x: inside.map((n) => n.ts), y: inside.map(() => top),
          marker: { symbol: "triangle-down", size: 10, color: C.COLORS[1] },
          text: inside.map((n) => [n.kind, scopeText(n.scope), n.text].filter(Boolean).join(": ")),
          hovertemplate: "%{x}<br>%{text}<extra></extra>" });
      }
    }
    C.plot("chart-daily", traces, { shapes, showlegend: false,
      yaxis: { tickprefix: "$", separatethousands: true, rangemode: "tozero" } });
  }

  function moversTable(id, rows) {
    C.table(id, [
      { label: "Dimension", value: (r) => r.dimension },
      { label: "Value", value: (r) => keyLabel(r.value) },
      { label: "Now", num: true, value: (r) => C.usd(r.current_usd) },
      { label: "Before", num: true, value: (r) => C.usd(r.previous_usd) },
      { label: "Change", num: true, cls: changeClass, value: (r) => C.signedUsd(r.change_usd) },
      { label: "%", num: true, cls: changeClass, value: (r) => r.change_pct === null ? "new" : C.pct(r.change_pct) },
    ], rows, "No movers for these filters.");
  }

  // -- Spend by team / by model -------------------------------------------------------------
  async function spend(current) {
    const by = body.dataset.by;
    const granularity = C.param("granularity", "day");
    // The API keeps the biggest values and sums the rest as "(other)": one colour each.
    const data = await C.get("spend", { by, granularity, top: MAX_SERIES - 1 });
    if (!current()) return;
    C.setText("total", "total " + C.usd(data.total_usd));
    const totals = new Map();
    const series = new Map();
    for (const r of data.rows) {
      const key = keyLabel(r.key);
      totals.set(key, (totals.get(key) || 0n) + (C.dec(r.cost_usd) || 0n));
      if (!series.has(key)) series.set(key, new Map());
      series.get(key).set(r.period, C.number(r.cost_usd) || 0);
    }
    const last = (k) => (k === "(other)" ? 1 : 0);
    const ranked = [...totals.entries()].sort((a, b) =>
      last(a[0]) - last(b[0]) || (a[1] < b[1] ? 1 : a[1] > b[1] ? -1 : 0));
    const periods = [...new Set(data.rows.map((r) => r.period))].sort();
    const traces = ranked.map(([k]) => ({
      type: "bar", name: k, x: periods, y: periods.map((p) => series.get(k).get(p) || 0),
      hovertemplate: k + "<br>%{x}<br>$%{y:,.2f}<extra></extra>",
    }));
    C.plot("chart-spend", traces, { barmode: "stack", legend: { orientation: "h", y: -0.12, traceorder: "normal" },
      yaxis: { tickprefix: "$", separatethousands: true } });
    const grand = C.dec(data.total_usd) ?? C.sum(data.rows.map((r) => r.cost_usd));
    C.table("spend-table", [
      { label: by, value: (r) => r[0] },
      { label: "Spend", num: true, value: (r) => C.usd(r[1]) },
      { label: "Share", num: true, value: (r) => C.pctOf(r[1], grand) },
    ], ranked);
  }

  // -- GPUs -----------------------------------------------------------------------------------
  async function gpus(current) {
    const by = C.param("rows", "pool"); // per-GPU rows on demand
    const [util, idle] = await Promise.all([C.get("gpu/utilization", { by }), C.get("gpu/idle")]);
    if (!current()) return;
    const rows = util.gpus || [];
    C.setText("heatmap-rows-label", by === "gpu" ? "GPU" : "pool");
    const chart = document.getElementById("chart-heatmap");
    chart.style.height = Math.max(320, Math.min(18 * rows.length + 120, 3700)) + "px";
    C.plot("chart-heatmap", rows.length ? [{
      type: "heatmap", x: util.hours, y: rows, z: util.z, zmin: 0, zmax: 100,
      colorscale: "YlGnBu", reversescale: true, hoverongaps: false,
      colorbar: { title: { text: "util %" }, thickness: 12 },
      hovertemplate: "%{y}<br>%{x}<br>%{z:.0f}%<extra></extra>",
    }] : [], { margin: { l: 200, r: 20, t: 10, b: 50 }, yaxis: { automargin: true, autorange: "reversed" } });
    const t = idle.totals || {};
    C.setText("idle-total", "idle cost " + C.usd(idle.idle_usd_total) + ": unheld " + C.usd(t.unheld_idle_usd) +
      ", held idle " + C.usd(t.held_idle_usd));
    const pools = idle.rows || [];
    const kind = (key, name, color) => ({
      type: "bar", name, x: pools.map((r) => keyLabel(r.pool)), y: pools.map((r) => C.number(r[key])),
      marker: { color }, hovertemplate: "%{x}<br>$%{y:,.2f} " + name + "<extra></extra>",
    });
    C.plot("chart-idle", pools.length ? [kind("unheld_idle_usd", "unheld (nobody on the GPU)", C.COLORS[3]),
      kind("held_idle_usd", "held idle (engine idle)", C.COLORS[1])] : [],
    { barmode: "stack", yaxis: { tickprefix: "$", separatethousands: true } });
    C.table("idle-table", [
      { label: "Pool", value: (r) => keyLabel(r.pool) },
      { label: "GPUs", num: true, value: (r) => C.count(r.gpus) },
      { label: "GPU-hours", num: true, value: (r) => C.count(r.gpu_hours) },
      { label: "Busy h", num: true, value: (r) => C.count(r.used_gpu_hours) },
      { label: "Held idle h", num: true, value: (r) => C.count(r.held_idle_gpu_hours) },
      { label: "Unheld h", num: true, value: (r) => C.count(r.unheld_gpu_hours) },
      { label: "No telemetry h", num: true, value: (r) => C.count(r.scheduled_gpu_hours + r.unobserved_gpu_hours) },
      { label: "Mean util.", num: true, value: (r) => C.pct(r.utilization_pct) },
      { label: "Held idle $", num: true, value: (r) => C.usd(r.held_idle_usd) },
      { label: "Unheld idle $", num: true, value: (r) => C.usd(r.unheld_idle_usd) },
      { label: "Idle cost", num: true, value: (r) => C.usd(r.idle_usd) },
    ], pools);
  }

  /** A date axis of whole days; a single day gets a day either side instead of milliseconds. */
  function dayAxis(days) {
    const distinct = [...new Set(days)].sort();
    const axis = { type: "date", tickformat: "%b %-d" };
    if (distinct.length === 1) {
      const day = Date.parse(distinct[0].slice(0, 10) + "T00:00:00Z");
      axis.range = [new Date(day - 86400e3).toISOString(), new Date(day + 86400e3).toISOString()];
      axis.dtick = 86400e3;
    }
    return axis;
  }

  // -- Tokens -------------------------------------------------------------------------------
  /** The API's cache-hit rate (a fraction of input tokens) as a percentage. */
  function ratePct(value) {
    const n = C.number(value);
    return n === null ? null : n * 100;
  }

  async function tokens(current) {
    const by = C.param("by", "model");
    const [data, advice] = await Promise.all([C.get("tokens", { by }),
      C.get("recommendations", { kind: "tokens|model_tiering" })]);
    if (!current()) return;
    window.CostlineRecs.tokenTable(advice); // recommendations.js, loaded after this file
    const rows = data.rows || [];
    C.setText("tokens-total", C.count(rows.reduce((a, r) => a + (C.number(r.requests) || 0), 0)) +
      " requests · " + C.usd(C.sum(rows.map((r) => r.cost_usd))));
    const keys = rows.map((r) => keyLabel(r.key));
    const priced = rows.filter((r) => C.number(r.cost_per_1k_tokens) !== null);
    C.plot("chart-per1k", priced.length ? [{ type: "bar", x: priced.map((r) => keyLabel(r.key)),
      y: priced.map((r) => C.number(r.cost_per_1k_tokens)), marker: { color: C.COLORS[0] },
      hovertemplate: "%{x}<br>$%{y:.4f} per 1K tokens<extra></extra>" }] : [],
    { yaxis: { tickprefix: "$" }, margin: { l: 60, r: 20, t: 10, b: 90 } });
    C.plot("chart-cache", rows.length ? [{ type: "bar", x: keys, y: rows.map((r) => ratePct(r.cache_hit_rate)),
      marker: { color: C.COLORS[2] }, hovertemplate: "%{x}<br>%{y:.1f}% of input tokens cached<extra></extra>" }] : [],
    { yaxis: { ticksuffix: "%", range: [0, 100] }, margin: { l: 60, r: 20, t: 10, b: 90 } });
    const daily = data.daily || [];
    const byKey = new Map();
    for (const d of daily) {
      const key = keyLabel(d.key);
      if (!byKey.has(key)) byKey.set(key, []);
      byKey.get(key).push(d);
    }
    C.plot("chart-context", [...byKey.entries()].slice(0, MAX_SERIES).map(([key, points]) => ({
      type: "scatter", mode: "lines+markers", name: key, x: points.map((p) => p.day),
      y: points.map((p) => C.number(p.avg_context_tokens)),
      hovertemplate: key + "<br>%{x}<br>%{y:,.0f} tokens<extra></extra>",
    })), { yaxis: { separatethousands: true, rangemode: "tozero" }, xaxis: dayAxis(daily.map((d) => d.day)) });
    C.table("tokens-table", [
      { label: by, value: (r) => keyLabel(r.key) },
      { label: "Requests", num: true, value: (r) => C.count(r.requests) },
      { label: "Input", num: true, value: (r) => C.count(r.input_tokens) },
      { label: "Cached input", num: true, value: (r) => C.count(r.cached_input_tokens) },
      { label: "Output", num: true, value: (r) => C.count(r.output_tokens) },
      { label: "Cost", num: true, value: (r) => C.usd(r.cost_usd) },
      { label: "Per 1K tokens", num: true, value: (r) => C.usd(r.cost_per_1k_tokens, 4) },
      { label: "Cache hits", num: true, value: (r) => C.pct(ratePct(r.cache_hit_rate)) },
      { label: "Avg context", num: true, value: (r) => C.count(r.avg_context_tokens) },
    ], rows);
  }

  // -- Budgets ------------------------------------------------------------------------------
  async function budgets(current) {
    const data = await C.get("budgets");
    if (!current()) return;
    const rows = data.rows || [];
    const names = rows.map((r) => r.budget);
    const ofAmount = (value, r) => {
      const a = C.number(r.amount_usd);
      const v = C.number(value);
      return a && v !== null ? (v / a) * 100 : null;
    };
    C.plot("chart-budgets", rows.length ? [
      { type: "bar", orientation: "h", name: "spent", y: names, x: rows.map((r) => ofAmount(r.spent_usd, r)),
        marker: { color: C.COLORS[0] }, hovertemplate: "%{y}<br>spent %{x:.1f}%<extra></extra>" },
      { type: "scatter", mode: "markers", name: "forecast P50 at period end", y: names,
        x: rows.map((r) => ofAmount(r.forecast_p50_usd, r)),
        error_x: { type: "data", symmetric: false,
          array: rows.map((r) => Math.max((ofAmount(r.forecast_p90_usd, r) ?? 0) - (ofAmount(r.forecast_p50_usd, r) ?? 0), 0)),
          arrayminus: rows.map((r) => Math.max((ofAmount(r.forecast_p50_usd, r) ?? 0) - (ofAmount(r.forecast_p10_usd, r) ?? 0), 0)) },
        marker: { color: C.COLORS[1], size: 10, symbol: "diamond" },
        hovertemplate: "%{y}<br>forecast %{x:.1f}%<extra></extra>" },
    ] : [], {
      height: Math.max(240, 34 * rows.length + 90),
      margin: { l: 200, r: 20, t: 10, b: 50 }, xaxis: { ticksuffix: "%", rangemode: "tozero" },
      yaxis: { automargin: true, autorange: "reversed" },
      shapes: [{ type: "line", xref: "x", yref: "paper", x0: 100, x1: 100, y0: 0, y1: 1,
        line: { color: "#b3261e", dash: "dash" } }],
    });
    document.getElementById("chart-budgets").style.height = Math.max(240, 34 * rows.length + 90) + "px";
    C.table("budgets-table", [
      { label: "Budget", value: (r) => r.budget },
      { label: "Scope", value: (r) => scopeText(r.scope) },
      { label: "Period", value: (r) => r.period },
      { label: "Amount", num: true, value: (r) => C.usd(r.amount_usd) },
      { label: "Spent", num: true, value: (r) => C.usd(r.spent_usd) },
      { label: "Used", num: true, value: (r) => C.pct(r.used_pct) },
      { label: "State", value: (r) => r.state, cls: (r) => "state-" + r.state },
      { label: "Thresholds crossed", value: (r) => (r.thresholds_crossed || []).join(", ") || "none" },
      { label: "Forecast P50 (P10–P90)", num: true, value: (r) => r.forecast_p50_usd === null ? C.NONE
        : C.usd(r.forecast_p50_usd) + " (" + C.usd(r.forecast_p10_usd) + "–" + C.usd(r.forecast_p90_usd) + ")" },
      { label: "Days to exhaustion", num: true, value: (r) => r.exhausted_on ? "exhausted " + r.exhausted_on
        : r.days_to_exhaustion === null || r.days_to_exhaustion === undefined ? C.NONE : String(r.days_to_exhaustion) },
    ], rows, "No budgets are configured, or none match these filters.");
  }

  // -- Findings -----------------------------------------------------------------------------
  const TRANSITIONS = [
    // [label, API action, statuses it may start from]
    ["Acknowledge", "ack", ["open", "snoozed"]],
    ["Resolve", "resolve", ["open", "acknowledged", "snoozed"]],
    ["Snooze 7 days", "snooze", ["open", "acknowledged", "snoozed"]],
    ["Reopen", "reopen", ["acknowledged", "resolved", "snoozed"]],
  ];

  function statusBadge(finding) {
    const text = finding.status === "snoozed" && finding.snoozed_until
      ? "snoozed until " + C.when(finding.snoozed_until) : finding.status;
    return el("span", { className: "status status-" + finding.status }, text);
  }

  /** Buttons for the moves this finding's status allows; `onChange` gets the updated finding. */
  function buttons(finding, onChange) {
    return el("div", { className: "buttons" }, TRANSITIONS
      .filter(([, , from]) => from.includes(finding.status))
      .map(([label, action]) => el("button", {
        type: "button", className: action === "ack" ? null : "secondary", dataset: { action },
        onclick: async (event) => {
          const button = event.currentTarget;
          button.disabled = true;
          const payload = action === "snooze"
            ? { until: new Date(Date.now() + 7 * 86400e3).toISOString() } : {};
          try {
            const updated = await C.post("findings/" + encodeURIComponent(finding.fingerprint) + "/" + action, payload);
            C.showError("");
            onChange(updated);
          } catch (error) {
            button.disabled = false;
            if (error.status !== 401) C.showError(label + ": " + error.message);
          }
        },
      }, label)));
  }

  function actionList(actions) {
    return el("ul", { className: "actions" }, (actions || []).map((a) => {
      if (typeof a === "string") return el("li", {}, a);
      const savings = a.estimated_monthly_savings_usd;
      return el("li", {}, a.text, savings ? " (saves about " + C.usd(savings) + "/month)" : null);
    }));
  }

  /** An incident's top causes: each value by name with its share of the excess and dollars a day. */
  function rootCause(evidence, top = 3) {
    const causes = ((evidence || {}).root_cause || []).filter((c) => c && typeof c === "object").slice(0, top);
    if (!causes.length) return C.NONE;
    return el("ul", { className: "causes" }, causes.map((c) => el("li", {},
      ((c.dimension === "resource" || c.dimension === "usage_type") && c.name ? c.name : c.dimension.replaceAll("_", " ") + " " + c.value) + (c.share !== undefined && c.share !== null ? " " + Math.round(c.share * 100) + "%" : ""),
      c.extra_per_day_usd !== undefined && c.extra_per_day_usd !== null ? " (" + C.usd(c.extra_per_day_usd) + "/day)" : null)));
  }

  function findingColumns(onChange) {
    return [
      { label: "Severity", value: (f) => f.severity, cls: (f) => "sev-" + f.severity },
      { label: "Finding", value: (f) => el("div", {},
        el("a", { href: "/findings/" + encodeURIComponent(f.fingerprint) }, f.title),
        f.summary ? el("div", { className: "note" }, f.summary) : null) },
      { label: "Root cause", value: (f) => rootCause(f.evidence) },
      { label: "Kind", value: (f) => f.kind.replaceAll("_", " ") },
      { label: "Owner", value: (f) => f.owner || "unowned" },
      { label: "Impact", num: true, value: (f) => f.impact_usd === null || f.impact_usd === undefined ? C.NONE : C.usd(f.impact_usd) },
      { label: "Suggested actions", value: (f) => actionList(f.actions) },
      { label: "Last seen", value: (f) => C.when(f.last_seen) },
      { label: "Status", value: (f) => statusBadge(f), cls: () => "status-cell" },
      { label: "", value: (f) => buttons(f, (updated) => onChange(updated)) },
    ];
  }

  async function findings(current) {
    const data = await C.get("findings", { status: C.param("status", "open"), kind: C.param("kind", "") });
    if (!current()) return;
    const rows = data.rows || [];
    C.setText("findings-count", data.total !== undefined && data.total > rows.length
      ? rows.length + " of " + data.total + " shown" : rows.length + " shown");
    const columns = findingColumns(updateRow);
    const node = C.table("findings-table", columns, rows, "No findings with this status.");
    function updateRow(updated) {
      const row = node.querySelector('tr[data-fingerprint="' + CSS.escape(updated.fingerprint) + '"]');
      if (!row) return;
      row.replaceChildren(...columns.map((c) => C.cell(c, updated)));
    }
  }

  async function finding(current) {
    const fingerprint = body.dataset.fingerprint;
    if (!fingerprint) return;
    let f;
    try {
      f = await C.get("findings/" + encodeURIComponent(fingerprint), {}, false);
    } catch (error) {
      if (error.status === 404) C.setText("f-title", "No such finding");
      throw error;
    }
    if (!current()) return;
    showFinding(f);
  }

  function showFinding(f) {
    document.title = f.title + " · costline";
    C.setText("f-title", f.title);
    C.setText("f-summary", f.summary || "");
    document.getElementById("f-buttons").replaceChildren(statusBadge(f), buttons(f, showFinding));
    const facts = [
      ["Kind", f.kind.replaceAll("_", " ")], ["Severity", f.severity], ["Status", f.status],
      ["Owner", f.owner || "unowned"],
      ["Impact", f.impact_usd === null || f.impact_usd === undefined ? C.NONE : C.usd(f.impact_usd)],
      ["Period", C.when(f.start) + " to " + C.when(f.end)],
      ["First seen", C.when(f.first_seen)], ["Last seen", C.when(f.last_seen)],
      ["Fingerprint", f.fingerprint],
    ];
    if (f.snoozed_until) facts.splice(3, 0, ["Snoozed until", C.when(f.snoozed_until)]);
    document.getElementById("f-facts").replaceChildren(...facts.flatMap(([k, v]) =>
      [el("dt", {}, k), el("dd", { title: v === C.NONE ? C.NONE_TITLE : null }, v)]));
    document.getElementById("f-actions").replaceChildren(...(f.actions || []).map((a) =>
      typeof a === "string" ? el("li", {}, a) : el("li", {}, a.text,
        a.estimated_monthly_savings_usd ? " (saves about " + C.usd(a.estimated_monthly_savings_usd) + "/month)" : null)));
    if (!(f.actions || []).length) document.getElementById("f-actions").append(el("li", {}, "none suggested"));
    const causes = ((f.evidence || {}).root_cause || []).filter((c) => c && typeof c === "object");
    C.table("f-causes", [
      { label: "Dimension", value: (c) => c.dimension.replaceAll("_", " ") },
      { label: "Value", value: (c) => c.name || c.value },
      { label: "Share of the excess", num: true, value: (c) => c.share === undefined || c.share === null ? C.NONE : Math.round(c.share * 100) + "%" },
      { label: "Extra per day", num: true, value: (c) => c.extra_per_day_usd === undefined || c.extra_per_day_usd === null ? C.NONE : C.usd(c.extra_per_day_usd) },
    ], causes, "No single value stood out.");
    const pairs = (o) => Object.entries(o || {});
    const show = (v) => (v === null || v === undefined ? C.NONE : typeof v === "object" ? JSON.stringify(v) : String(v));
    C.table("f-scope", [{ label: "Dimension", value: (p) => p[0] }, { label: "Value", value: (p) => p[1] }], pairs(f.scope));
    C.table("f-evidence", [{ label: "Field", value: (p) => p[0] }, { label: "Value", value: (p) => show(p[1]) }], pairs(f.evidence));
  }

  // -- Start the page -----------------------------------------------------------------------
  const LOADERS = { overview, teams: spend, models: spend, gpus, tokens, budgets, findings };
  const page = body.dataset.page;
  const load = page === "findings" && body.dataset.fingerprint !== undefined ? finding : LOADERS[page];
  if (load) {
    const reload = C.start(load);
    C.bindSelect("granularity", "granularity", reload);
    C.bindSelect("heatmap-by", "rows", reload);
    C.bindSelect("tokens-by", "by", reload);
    C.bindSelect("finding-status", "status", reload);
    C.bindSelect("finding-kind", "kind", reload);
  }
})();
