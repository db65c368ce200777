// The prelude: the helpers every Tavern widget shares. widgets/feed.py puts this file in
// front of each widget's own .js when it is imported (one ESM string per widget: no build
// step, no import URL for JupyterLab or Panel to resolve, offline in both). A widget file
// uses these names and never defines them again (tests/test_tavern_api.py checks).

// The formatters, one output each (docs/tavern.md "Formatters"): a missing value
// (null, undefined, NaN) is "—" everywhere.
const missing = (x) => x === null || x === undefined || Number.isNaN(Number(x));

// A number with `digits` decimals: num(0.12345, 4) = "0.1235".
function num(x, digits = 2) {
  return missing(x) ? "—" : Number(x).toFixed(digits);
}

// A share (0..1) as a percentage: pct(0.875) = "88%", pct(0.875, 1) = "87.5%".
function pct(x, digits = 0) {
  return missing(x) ? "—" : `${(100 * x).toFixed(digits)}%`;
}

// Bytes as decimal gigabytes with two decimals: gb(14.4e9) = "14.40 GB".
function gb(bytes) {
  return missing(bytes) ? "—" : `${(bytes / 1e9).toFixed(2)} GB`;
}

// Seconds as the two largest units: "1h 2m", "3m 4s", "5s".
function duration(s) {
  if (missing(s) || !Number.isFinite(Number(s))) return "—";
  s = Math.round(s);
  return s >= 3600 ? `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`
       : s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`;
}

// An element with a class and a text.
function el_(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// A button naming its action (data-action, which the tests click) that runs onClick.
function button(label, action, onClick, cls = "") {
  const b = el_("button", cls, label);
  b.dataset.action = action;
  b.addEventListener("click", onClick);
  return b;
}

// send(name, args): one action to the page's Python session through the synced `action`
// property (Panel's anywidget adapter has no JS -> Python custom messages). The nonce
// makes each click count once; extra() adds what every action of the widget carries.
function sender(model, extra = () => ({})) {
  return (name, args = {}) => {
    model.set("action", { name, nonce: Date.now() + Math.random(), ...extra(), ...args });
    model.save_changes();
  };
}

// The widget's synced state: its typed fields (STATE_FIELDS, from widgets/traits.py, put
// in front of the widget's own file by widgets/feed.py) as one object; a field not sent
// yet is missing.
function state_(model) {
  const s = {};
  for (const f of STATE_FIELDS) {
    const v = model.get(f);
    if (v !== null && v !== undefined) s[f] = v;
  }
  return s;
}

// Set a node's text only when it differs: writing the same text again still makes
// Chromium recompute style and layout and repaint, on every state change (each step).
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// The same for a node's class list (a state's colour, a notice's mark).
function setClass(node, cls) {
  if (node.className !== cls) node.className = cls;
}

// Rebuild one part of a view only when its own data changed: paint() runs when `sig`
// differs from the last one given under `name` in `memo` (the widget's own object). A new
// step changes the state, but not the loss curve's alarms or the events list every time.
function whenChanged(memo, name, sig, paint) {
  if (memo[name] === sig) return;
  memo[name] = sig;
  paint();
}

// Where a widget shows the session's notice (data-stat="notice", which the tests read).
function notice_(prefix) {
  const n = el_("div", `${prefix}-notice`);
  n.dataset.stat = "notice";
  return n;
}

// The session's notice ({ok, action, message, ...}, or null): its message, marked
// `<prefix>-bad` when the realm refused the action and `<prefix>-good` otherwise.
function showNotice(node, n, prefix) {
  setText(node, n && n.message ? n.message : "");
  setClass(node, `${prefix}-notice ${n && n.ok === false ? `${prefix}-bad` : `${prefix}-good`}`);
}

// Redraw a list without rebuilding what did not change: a row whose signature (sigOf) is
// the same as last time keeps its node, so a click, a hover or a focused input on it
// survives the redraws that every new step or checkpoint brings; nodes move only where the
// order changed. `cache` (a Map the widget keeps) remembers key -> {sig, node}.
function keyedRows(container, items, keyOf, sigOf, build, cache) {
  const next = new Map();
  const nodes = items.map((it) => {
    const key = keyOf(it);
    const sig = sigOf(it);
    const old = cache.get(key);
    const node = old && old.sig === sig ? old.node : build(it);
    next.set(key, { sig, node });
    return node;
  });
  nodes.forEach((n, i) => {
    if (container.children[i] !== n) container.insertBefore(n, container.children[i] || null);
  });
  while (container.children.length > nodes.length) container.lastElementChild.remove();
  cache.clear();
  next.forEach((v, k) => cache.set(k, v));
}

// Tell the page's session whether this view can be seen (the synced `in_view`): the tab
// is shown (document.visibilityState), the widget is inside the window
// (IntersectionObserver), and the view is not closed (render's cleanup, pagehide). The
// session's poller refreshes only views that can be seen (widgets/poller.py) and sends
// the current state at once when one becomes visible. Returns the cleanup.
// A widget with no `el` to watch (the toasts, fixed on screen) reports false: the page is
// seen while one of its other widgets is.
function watchView(model, el) {
  let inside = el !== null;
  let closed = false;
  const report = () => {
    const seen = !closed && inside && document.visibilityState === "visible";
    if (model.get("in_view") !== seen) {
      model.set("in_view", seen);
      model.save_changes();
    }
  };
  const io = typeof IntersectionObserver === "function"
    ? new IntersectionObserver((entries) => {
      inside = entries[entries.length - 1].isIntersecting;
      report();
    })
    : null;
  if (io && el) io.observe(el);
  const gone = () => { closed = true; report(); };
  document.addEventListener("visibilitychange", report);
  window.addEventListener("pagehide", gone);
  report();
  return () => {
    if (io) io.disconnect();
    document.removeEventListener("visibilitychange", report);
    window.removeEventListener("pagehide", gone);
    gone();
  };
}

// draw() now and on every change of a state field, and report whether `el` can be seen;
// returns render()'s cleanup.
function follow(model, el, draw) {
  // One draw per batch of changed fields: a refresh sets several at once.
  let queued = false;
  const later = () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => { queued = false; draw(); });
  };
  for (const f of STATE_FIELDS) model.on(`change:${f}`, later);
  const unwatch = watchView(model, el);
  draw();
  return () => {
    for (const f of STATE_FIELDS) model.off(`change:${f}`, later);
    unwatch();
  };
}
