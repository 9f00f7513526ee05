/* costline dashboard: the Recommendations page; see costline.js for the helpers.
 * It reads /api/v1/recommendations (the stored recommendations, nothing recomputed) and shows the
 * API's figures as they are: totals by kind, the rows largest saving first, and the realized
 * savings of those acted on. Money is formatted exactly from its decimal strings. */
"use strict";

(() => {
  const C = Costline;
  const el = C.el;
  const body = document.body;
  const LIVE = "open|acknowledged";

  function kindLabel(kind) {
    return kind ? String(kind).replaceAll("_", " ") : C.NONE;
  }

  /** Fill a page-local select with the API's facets, keeping the URL's choice. */
  function fillSelect(id, name, values) {
    const select = document.getElementById(id);
    if (!select) return;
    const wanted = C.param(name, "");
    const all = Array.from(new Set([...(values || []), ...(wanted ? [wanted] : [])])).sort();
    select.replaceChildren(el("option", { value: "" }, "all"),
      ...all.map((v) => el("option", { value: v }, name === "kind" ? kindLabel(v) : v)));
    select.value = wanted;
  }

  /** The action's first line as text; a config snippet after it as code. */
  function action(r) {
    if (!r.action) return C.NONE;
    const first = r.action.split("\n", 1)[0];
    return el("div", { className: "action" }, first,
      r.snippet ? el("pre", {}, el("code", {}, r.snippet)) : null);
  }

  function title(r) {
    return el("div", {},
      el("a", { href: "/findings/" + encodeURIComponent(r.fingerprint) }, r.title),
      r.resource ? el("div", { className: "note" }, r.resource) : null);
  }

  function range(r) {
    return C.usd(r.savings_low_usd) + "–" + C.usd(r.savings_high_usd);
  }

  function kindsChart(kinds) {
    const names = kinds.map((k) => kindLabel(k.kind));
    const n = (v) => C.number(v) ?? 0;
    C.plot("chart-rec-kinds", kinds.length ? [{
      type: "bar", orientation: "h", y: names, x: kinds.map((k) => n(k.savings_monthly_usd)),
      marker: { color: C.COLORS[2] },
      error_x: { type: "data", symmetric: false,
        array: kinds.map((k) => Math.max(n(k.savings_high_usd) - n(k.savings_monthly_usd), 0)),
        arrayminus: kinds.map((k) => Math.max(n(k.savings_monthly_usd) - n(k.savings_low_usd), 0)) },
      hovertemplate: "%{y}<br>$%{x:,.0f} a month (P50)<extra></extra>",
    }] : [], { margin: { l: 140, r: 20, t: 10, b: 40 }, xaxis: { tickprefix: "$", rangemode: "tozero" },
      yaxis: { autorange: "reversed" } });
  }

  async function recommendations(current) {
    const chosen = { kind: C.param("kind", ""), owner: C.param("owner", "") };
    const [live, done] = await Promise.all([
      C.get("recommendations", { ...chosen, status: C.param("status", LIVE) }),
      C.get("recommendations", { ...chosen, status: "resolved" }),
    ]);
    if (!current()) return;
    fillSelect("rec-kind", "kind", live.facets.kinds);
    fillSelect("rec-owner", "owner", live.facets.owners);
    const t = live.totals;
    C.setText("rec-total", C.count(t.count) + " · saving " + C.usd(t.savings_monthly_usd) +
      " a month (P50; " + C.usd(t.savings_low_usd) + "–" + C.usd(t.savings_high_usd) + ")");
    C.table("rec-kinds", [
      { label: "Kind", value: (k) => kindLabel(k.kind) },
      { label: "Count", num: true, value: (k) => C.count(k.count) },
      { label: "Current cost/month", num: true, value: (k) => C.usd(k.current_monthly_usd) },
      { label: "Saving/month (P50)", num: true, value: (k) => C.usd(k.savings_monthly_usd) },
      { label: "Low–high", num: true, value: range },
    ], live.by_kind, "No recommendations with these filters: run costline recommend.");
    kindsChart(live.by_kind);
    C.table("rec-table", [
      { label: "Kind", value: (r) => kindLabel(r.kind) },
      { label: "Recommendation", value: title },
      { label: "Owner", value: (r) => r.owner || "unowned" },
      { label: "Current cost/month", num: true, value: (r) => C.usd(r.current_monthly_usd) },
      { label: "Saving/month (P50)", num: true, value: (r) => C.usd(r.savings_monthly_usd) },
      { label: "Low–high", num: true, value: range },
      { label: "Confidence", value: (r) => r.confidence || C.NONE },
      { label: "Risk", value: (r) => r.risk || C.NONE },
      { label: "Action", value: action },
      { label: "Status", value: (r) => el("span", { className: "status status-" + r.status }, r.status) },
    ], live.rows, "No recommendations with these filters.");
    const acted = done.rows.filter((r) => r.realized_monthly_usd !== null && r.realized_monthly_usd !== undefined);
    C.setText("rec-realized-total", acted.length ? "realized " + C.usd(done.totals.realized_monthly_usd) +
      " a month against " + C.usd(done.totals.estimated_for_acted_on_usd) + " estimated" : "");
    C.table("rec-realized", [
      { label: "Recommendation", value: title },
      { label: "Kind", value: (r) => kindLabel(r.kind) },
      { label: "Owner", value: (r) => r.owner || "unowned" },
      { label: "Estimated/month", num: true, value: (r) => C.usd(r.savings_monthly_usd) },
      { label: "Realized/month", num: true, value: (r) => C.usd(r.realized_monthly_usd) },
      { label: "Of the estimate", num: true, value: (r) => C.pctOf(r.realized_monthly_usd, r.savings_monthly_usd) },
      { label: "Resolved", value: (r) => C.when((r.evidence || {}).resolved_at || r.last_seen) },
    ], acted, "None acted on yet: a recommendation resolves once a run no longer finds it.");
  }

  /** The Tokens page's section (pages.js asks for the rows): the stored token and
   * model-tiering recommendations. */
  function tokenTable(data) {
    const t = data.totals;
    C.setText("tokens-recs-total", C.count(t.count) + " · saving " + C.usd(t.savings_monthly_usd) +
      " a month (P50)");
    C.table("tokens-recs", [
      { label: "Lever", value: (r) => kindLabel((r.scope || {}).lever || r.kind) },
      { label: "Recommendation", value: title },
      { label: "Owner", value: (r) => r.owner || "unowned" },
      { label: "Current cost/month", num: true, value: (r) => C.usd(r.current_monthly_usd) },
      { label: "Saving/month (P50)", num: true, value: (r) => C.usd(r.savings_monthly_usd) },
      { label: "Low–high", num: true, value: range },
      { label: "Confidence", value: (r) => r.confidence || C.NONE },
      { label: "Action", value: action },
    ], data.rows, "No token recommendations stored: run costline recommend --kind tokens.");
  }

  window.CostlineRecs = { tokenTable };

  if (body.dataset.page === "recommendations") {
    const reload = C.start(recommendations);
    C.bindSelect("rec-kind", "kind", reload);
    C.bindSelect("rec-owner", "owner", reload);
    C.bindSelect("rec-status", "status", reload);
  }
})();
