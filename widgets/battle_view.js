// Battle view: the live loss curve, current quest, step, tokens/s, and the
// pause / resume / stop controls. Actions go back through the synced `action`
// property (Panel's anywidget adapter has no JS -> Python custom messages).

const SVG = "http://www.w3.org/2000/svg";

function svg_(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function drawCurve(svg, points, alarms = []) {
  const W = 600, H = 180, P = 34;
  svg.replaceChildren();
  svg.append(svg_("rect", { x: P, y: 8, width: W - P - 8, height: H - P - 8, class: "rt-plot" }));
  if (points.length < 2) {
    const t = svg_("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "rt-axis" });
    t.textContent = "waiting for the first blows…";
    svg.append(t);
    return;
  }
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  const y0 = Math.min(...ys), y1 = Math.max(...ys);
  const sx = (x) => P + ((x - x0) / Math.max(1e-9, x1 - x0)) * (W - P - 8);
  const sy = (y) => 8 + (1 - (y - y0) / Math.max(1e-9, y1 - y0)) * (H - P - 8);
  const d = points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
  svg.append(svg_("path", { d, class: "rt-line" }));
  // Loss alarms (rolled back to the last good checkpoint): a red tick at their step.
  for (const step of alarms.filter((a) => a >= x0 && a <= x1)) {
    const x = sx(step).toFixed(1);
    const mark = svg_("path", { d: `M${x},8L${x},${H - P}`, class: "rt-alarm" });
    const title = svg_("title", {});
    title.textContent = `loss alarm at step ${step}: rolled back`;
    mark.append(title);
    svg.append(mark);
  }
  for (const [x, y, txt, anchor] of [[P - 4, 14, y1.toFixed(2), "end"], [P - 4, H - P, y0.toFixed(2), "end"],
                                     [P, H - P + 16, String(x0), "start"], [W - 8, H - P + 16, String(x1), "end"]]) {
    const t = svg_("text", { x, y, "text-anchor": anchor, class: "rt-axis" });
    t.textContent = txt;
    svg.append(t);
  }
  const lbl = svg_("text", { x: (W + P) / 2, y: H - 4, "text-anchor": "middle", class: "rt-axis" });
  lbl.textContent = "step → (loss)";
  svg.append(lbl);
}

function render({ model, el }) {
  el.classList.add("realm-widget", "realm-battle-view");
  const send = sender(model);
  const box = el_("div", "realm-card rt-battle");
  const head = el_("div", "rt-head");
  const state = el_("span", "rt-state");
  state.dataset.stat = "state";
  const quest = el_("span", "rt-quest");
  quest.dataset.stat = "quest";
  head.append(el_("span", "rt-title", "⚔️ Battle"), state, quest);
  const facts = el_("div", "rt-facts");
  const cells = {};
  for (const [key, label] of [["step", "Step"], ["loss", "Loss"], ["tokens_per_s", "Tokens/s"], ["eta", "ETA"]]) {
    const cell = el_("div", "rt-fact");
    const v = el_("b", "rt-value");
    v.dataset.stat = key;
    cell.append(el_("span", "rt-label", label), v);
    facts.append(cell);
    cells[key] = v;
  }
  const svg = svg_("svg", { viewBox: "0 0 600 180", class: "rt-curve", role: "img",
                            "aria-label": "training loss by step" });
  const controls = el_("div", "rt-controls");
  for (const [name, label] of [["pause", "⏸ Pause"], ["resume", "▶ Resume"], ["stop", "⏹ Stop"], ["skip", "⏭ Skip"]]) {
    controls.append(button(label, name, () => send(name), `rt-btn rt-${name}`));
  }
  const arena = el_("div", "rt-arena");  // floating damage numbers and XP gains rise here
  arena.append(svg);
  const notice = notice_("rt");
  const events = el_("ul", "rt-events");
  events.dataset.stat = "events";
  box.append(head, facts, arena, controls, notice, el_("div", "rt-subtitle", "📰 Recent events"), events);
  el.append(box);

  // The XP gained and the loss dealt since the last float rise over the curve. One float
  // at a time and a rest after it: steps come faster than a float rises, and a float
  // rising is a frame drawn at every tick of the screen (Chromium drawing floats back to
  // back took 4-5% of a core, measured); the steps gained meanwhile go into the next one,
  // which rises when the rest ends.
  const FLOAT_REST_MS = 3500;
  let floating = false, lastStep = null;
  const float = (xp, loss) => {
    const f = el_("span", "rt-float rt-xp", `+${xp} XP`);
    if (loss !== null && loss !== undefined) f.append(el_("span", "rt-dmg", `-${Number(loss).toFixed(3)}`));
    f.style.left = `${20 + Math.random() * 50}%`;
    arena.append(f);
    floating = true;
    // Gone when its rise ends; the timer covers an animation that never runs (reduced motion).
    let gone = false;
    const done = () => {
      if (gone) return;
      gone = true;
      f.remove();
      setTimeout(() => { floating = false; maybeFloat(); }, FLOAT_REST_MS);
    };
    f.addEventListener("animationend", done, { once: true });
    setTimeout(done, 2000);
  };
  const stepOf = (s) => (s.battle || {}).step ?? (s.hero || {}).xp ?? 0;
  // From the model's state (the one last drawn): at a draw, and when a rest ends.
  const maybeFloat = () => {
    const s = state_(model), step = stepOf(s);
    if (lastStep === null || step < lastStep) lastStep = step;
    if (step > lastStep && !floating && document.visibilityState === "visible") {
      float(step - lastStep, (s.battle || {}).loss);
      lastStep = step;
    }
  };
  const memo = {};

  const draw = () => {
    const s = state_(model);
    const b = s.battle || {};
    const st = b.state || "offline";
    setText(state, st);
    setClass(state, `rt-state rt-${st}`);
    setText(quest, b.quest ? `quest: ${b.quest}` : "no quest");
    setText(cells.step, b.total_steps ? `${b.step ?? 0} (${b.local_step ?? 0}/${b.total_steps})`
                                      : String(stepOf(s)));
    setText(cells.loss, num(b.loss, 4));
    setText(cells.tokens_per_s, b.tokens_per_s ? Math.round(b.tokens_per_s).toLocaleString() : "—");
    setText(cells.eta, st === "training" ? duration(b.eta_seconds) : "—");
    const losses = s.losses || [], alarms = s.alarms || [];
    whenChanged(memo, "curve", JSON.stringify([losses, alarms]), () => drawCurve(svg, losses, alarms));
    maybeFloat();
    showNotice(notice, s.notice, "rt");
    const recent = (s.events || []).slice(0, 8);
    whenChanged(memo, "events", JSON.stringify(recent), () => events.replaceChildren(...recent.map((ev) => {
      const li = el_("li", `rt-ev rt-ev-${ev.kind}`);
      li.append(el_("time", "rt-when", new Date(ev.ts * 1000).toLocaleTimeString()), el_("span", "", ev.message));
      return li;
    })));
  };
  return follow(model, el, draw);
}

export default { render };
