/* costline dashboard, shared part: filters in the URL, API calls, exact money formatting,
 * DOM building with textContent only, tables, plotly charts and auto-refresh.
 * Money arrives as decimal strings; sums and ratios shown as text are done exactly with BigInt,
 * numbers are made only to position marks on charts. */
"use strict";

const Costline = (() => {
  const FILTERS = ["start", "end", "team", "project", "environment", "provider", "model"];
  const DIMENSIONS = ["team", "project", "environment", "provider", "model"];
  const SCALE = 18; // digits after the point: DECIMAL(38, 18)
  const ONE = 10n ** BigInt(SCALE);
  // The one label for "no value" on every page (a tooltip says so): never "n/a", "null" or 0.
  const NONE = "—";
  const NONE_TITLE = "no value";
  const body = document.body;
  let generation = 0;

  // -- URL and filters ----------------------------------------------------------------------
  function query() {
    return new URLSearchParams(window.location.search);
  }

  function filterParams() {
    const all = query();
    const out = new URLSearchParams();
    for (const name of FILTERS) {
      for (const value of all.getAll(name)) {
        if (value) out.append(name, value);
      }
    }
    return out;
  }

  /** Set (or with "" remove) a query parameter, keeping the page's other state. */
  function setParam(name, value) {
    const all = query();
    if (value) all.set(name, value);
    else all.delete(name);
    const text = all.toString();
    window.history.replaceState(null, "", window.location.pathname + (text ? "?" + text : ""));
    syncNav();
  }

  function param(name, fallback) {
    return query().get(name) || fallback;
  }

  /** A link to a page of this dashboard with the shared filters and `extra` parameters. */
  function link(path, extra) {
    const params = filterParams();
    for (const [k, v] of Object.entries(extra || {})) params.set(k, v);
    const text = params.toString();
    return path + (text ? "?" + text : "");
  }

  /** Nav links and the back link carry the shared filters. */
  function syncNav() {
    const text = filterParams().toString();
    for (const link of document.querySelectorAll("nav a[data-path], a.brand, a.back")) {
      const path = link.dataset.path || new URL(link.href).pathname;
      link.href = path + (text ? "?" + text : "");
    }
  }

  // -- API ----------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function toLogin() {
    const here = window.location.pathname + window.location.search;
    window.location.assign("/login?next=" + encodeURIComponent(here));
  }

  async function errorMessage(response) {
    try {
      const data = await response.json();
      const error = data.error || data;
      if (typeof error.message === "string") return error.message;
      if (typeof data.detail === "string") return data.detail;
      if (Array.isArray(data.detail)) return data.detail.map((d) => d.msg || String(d)).join("; ");
    } catch (_ignored) {
      /* not JSON: fall through */
    }
    return response.status + " " + response.statusText;
  }

  async function request(method, path, params, payload) {
    const url = "/api/v1/" + path + (params && params.toString() ? "?" + params.toString() : "");
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (payload !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    const response = await fetch(url, init);
    if (response.status === 401) {
      toLogin();
      throw new ApiError(401, "Log in to see this page.");
    }
    if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
    return response.json();
  }

  /** GET /api/v1/<path> with the shared filters (unless withFilters is false) and extra params. */
  function get(path, extra, withFilters = true) {
    const params = withFilters ? filterParams() : new URLSearchParams();
    for (const [k, v] of Object.entries(extra || {})) {
      if (v !== undefined && v !== null && v !== "") params.set(k, v);
    }
    return request("GET", path, params);
  }

  function post(path, payload) {
    return request("POST", path, null, payload === undefined ? {} : payload);
  }

  // -- Exact decimals -----------------------------------------------------------------------
  /** A decimal string as a BigInt scaled by 10^18; null for null/empty. */
  function dec(text) {
    if (text === null || text === undefined || text === "") return null;
    const s = String(text).trim();
    const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(s);
    if (!m) return null;
    let digits = (m[2] || "0") + (m[3] || "");
    let exp = -(m[3] || "").length + Number(m[4] || 0) + SCALE;
    if (exp < 0) {
      digits = digits.slice(0, Math.max(digits.length + exp, 0)) || "0";
      exp = 0;
    }
    const value = BigInt(digits) * 10n ** BigInt(exp);
    return m[1] === "-" ? -value : value;
  }

  function sum(values) {
    let total = 0n;
    for (const v of values) {
      const d = dec(v);
      if (d !== null) total += d;
    }
    return total;
  }

  /** Round a scaled BigInt to `digits` decimals (half away from zero) and group thousands. */
  function fixed(scaled, digits) {
    const negative = scaled < 0n;
    let v = negative ? -scaled : scaled;
    const unit = 10n ** BigInt(SCALE - digits);
    v = (v + unit / 2n) / unit;
    let text = v.toString().padStart(digits + 1, "0");
    const whole = text.slice(0, text.length - digits);
    const frac = digits ? "." + text.slice(text.length - digits) : "";
    text = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + frac;
    return (negative && v !== 0n ? "-" : "") + text;
  }

  /** "$1,234.57" from a decimal string or scaled BigInt; "unpriced" for null. */
  function usd(value, digits = 2) {
    const scaled = typeof value === "bigint" ? value : dec(value);
    if (scaled === null) return "unpriced";
    const text = fixed(scaled, digits);
    return text.startsWith("-") ? "-$" + text.slice(1) : "$" + text;
  }

  /** 100 * a / b as text with one decimal, exactly; NONE when b is 0 or either is null. */
  function pctOf(a, b) {
    const x = typeof a === "bigint" ? a : dec(a);
    const y = typeof b === "bigint" ? b : dec(b);
    if (x === null || y === null || y === 0n) return NONE;
    return fixed((x * 100n * ONE) / y, 1) + "%";
  }

  function number(value) {
    if (value === null || value === undefined || value === "") return null;
    const n = Number(value);
    return Number.isFinite(n) ? n : null;
  }

  function count(value) {
    const n = number(value);
    return n === null ? NONE : Math.round(n).toLocaleString("en-US");
  }

  function pct(value, digits = 1) {
    const n = number(value);
    return n === null ? NONE : n.toFixed(digits) + "%";
  }

  function signedUsd(value) {
    const d = dec(value);
    if (d === null) return NONE;
    return (d > 0n ? "+" : "") + usd(d);
  }

  function when(iso) {
    if (!iso) return NONE;
    return String(iso).replace("T", " ").replace(/:\d\d(\.\d+)?(Z|\+00:00)$/, " UTC");
  }

  // -- DOM ----------------------------------------------------------------------------------
  /** Build an element; children are nodes or text (always inserted as text). */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null) continue;
      if (k === "className") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** Set an element's text; the "no value" label gets its tooltip. */
  function setText(id, text) {
    const node = document.getElementById(id);
    if (!node) return;
    node.textContent = text;
    if (text === NONE) node.title = NONE_TITLE;
    else node.removeAttribute("title");
  }

  /** Fill a <table>: columns are {label, value(row) -> text|Node, num?, cls?(row)}. */
  function table(target, columns, rows, emptyText = "Nothing for these filters.") {
    const node = typeof target === "string" ? document.getElementById(target) : target;
    const head = el("thead", {}, el("tr", {}, columns.map((c) =>
      el("th", { className: c.num ? "num" : null, scope: "col" }, c.label))));
    const bodyRows = rows.length
      ? rows.map((row) => el("tr", { dataset: row.fingerprint ? { fingerprint: row.fingerprint } : {} },
        columns.map((c) => cell(c, row))))
      : [el("tr", {}, el("td", { className: "empty", colspan: String(columns.length) }, emptyText))];
    node.replaceChildren(head, el("tbody", {}, bodyRows));
    return node;
  }

  function cell(column, row) {
    const value = column.value(row);
    const classes = [column.num ? "num" : "", column.cls ? column.cls(row) : ""].join(" ").trim();
    const missing = value === null || value === undefined || value === NONE;
    return el("td", { className: classes || null, title: missing ? NONE_TITLE : null },
      missing ? NONE : value);
  }

  function showError(message) {
    const box = document.getElementById("error");
    if (!box) return;
    box.textContent = message || "";
    box.hidden = !message;
  }

  // -- Charts -------------------------------------------------------------------------------
  const COLORS = ["#1f5f8b", "#e07b39", "#3a9d5d", "#c44e52", "#8172b3", "#937860", "#da8bc3",
    "#8c8c8c", "#ccb974", "#64b5cd", "#2b8a8a", "#b55d9c"];

  /** Draw (or redraw) a chart; an empty chart still renders, with a note in the middle. */
  function plot(id, traces, layout = {}) {
    const node = document.getElementById(id);
    if (!node) return;
    const empty = !traces.length || traces.every((t) => !(t.x || t.y || t.z || []).length);
    const base = {
      margin: { l: 60, r: 20, t: 10, b: 40 },
      font: { family: "system-ui, sans-serif", size: 12, color: "#1d2430" },
      paper_bgcolor: "#fff", plot_bgcolor: "#fff", colorway: COLORS,
      hovermode: "closest", legend: { orientation: "h", y: -0.15 },
      annotations: empty ? [{ text: "No data for these filters", showarrow: false,
        xref: "paper", yref: "paper", x: 0.5, y: 0.5, font: { size: 14, color: "#5d6878" } }] : [],
    };
    const merged = Object.assign(base, layout);
    for (const axis of ["xaxis", "yaxis"]) {
      merged[axis] = Object.assign({ automargin: true }, layout[axis]);
    }
    if (empty) {
      merged.xaxis = Object.assign({}, merged.xaxis, { visible: false });
      merged.yaxis = Object.assign({}, merged.yaxis, { visible: false });
    }
    window.Plotly.react(node, traces, merged,
      { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] });
  }

  // -- Filter bar and page life cycle -------------------------------------------------------
  async function fillFilterBar() {
    const form = document.getElementById("filters");
    if (!form) return;
    let dims = {};
    try {
      // The values present in the chosen window, not narrowed by the other filters.
      dims = await get("meta/dimensions", { start: param("start", ""), end: param("end", "") }, false);
    } catch (error) {
      if (error.status !== 401) showError("Filter values: " + error.message);
      return;
    } finally {
      form.dataset.filled = "true";
    }
    for (const name of DIMENSIONS) {
      const select = form.elements.namedItem(name);
      if (!select) continue;
      const current = param(name, "");
      const values = Array.from(new Set([...(dims[name] || []).filter((v) => v), ...(current ? [current] : [])]));
      values.sort((a, b) => String(a).localeCompare(String(b)));
      select.replaceChildren(el("option", { value: "" }, "all"),
        ...values.map((v) => el("option", { value: v }, v)));
      select.value = current;
    }
  }

  function wireFilterBar(reload) {
    const form = document.getElementById("filters");
    if (!form) return;
    for (const name of FILTERS) {
      const input = form.elements.namedItem(name);
      if (!input) continue;
      input.addEventListener("change", () => {
        setParam(name, input.value);
        reload();
      });
    }
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      for (const name of FILTERS) {
        const input = form.elements.namedItem(name);
        if (input) setParam(name, input.value);
      }
      reload();
    });
  }

  /** Wire a page-local <select> to a query parameter; a change re-fetches. */
  function bindSelect(id, name, reload) {
    const select = document.getElementById(id);
    if (!select) return;
    const wanted = param(name, select.value);
    if (Array.from(select.options).some((o) => o.value === wanted)) select.value = wanted;
    select.addEventListener("change", () => {
      setParam(name, select.value);
      reload();
    });
  }

  /** Run the page's loader now, on every filter change and every refresh_seconds. */
  function start(load) {
    const reload = async () => {
      const mine = ++generation;
      body.classList.add("loading");
      try {
        await load(() => mine === generation);
        if (mine === generation) {
          showError("");
          setText("updated", "updated " + new Date().toISOString().slice(11, 19) + " UTC");
        }
      } catch (error) {
        if (mine === generation && error.status !== 401) showError(error.message);
      } finally {
        if (mine === generation) body.classList.remove("loading");
      }
    };
    syncNav();
    wireFilterBar(reload);
    fillFilterBar();
    const seconds = Number(body.dataset.refreshSeconds) || 300;
    window.setInterval(() => {
      if (!document.hidden) reload();
    }, seconds * 1000);
    reload();
    return reload;
  }

  return {
    FILTERS, NONE, NONE_TITLE, cell, get, post, dec, sum, usd, pctOf, number, count, pct, signedUsd, when, el, setText,
    table, plot, showError, bindSelect, param, setParam, start, link, COLORS,
  };
})();
