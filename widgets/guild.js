// The Guild: each skill's level and its progress to the next (the last evals at the
// level against the level-up rule), the weakest primitives, a per-primitive accuracy
// heatmap over checkpoints, and targeted sparring on the weak spots. Below, the
// forgetting watch: each passive's probe accuracy over steps, its best, a drop flag
// (more than drop_points below its best) and a review quest on demand.

function heatColor(a) {  // red (0) -> amber -> green (1)
  if (a === null || a === undefined) return "transparent";
  const h = Math.round(120 * Math.max(0, Math.min(1, a)));
  return `hsl(${h}, 65%, 45%)`;
}

function render({ model, el }) {
  el.classList.add("realm-widget", "realm-guild");
  const send = sender(model);
  const root = el_("div", "realm-card rg-box");
  const notice = notice_("rg");
  const cards = el_("div", "rg-cards");
  const watch = el_("div", "rg-watch");
  watch.dataset.role = "passives";
  root.append(el_("div", "rg-title", "🛡️ The Guild"), notice, cards, watch);
  el.append(root);
  const open = new Set();  // skills whose heatmap is shown

  const heatmap = (h) => {
    const t = el_("table", "rg-heat");
    t.dataset.role = "heatmap";
    const head = el_("tr");
    head.append(el_("th", "", "primitive \\ step"), ...h.steps.map((s) => el_("th", "", String(s))));
    t.append(head);
    const at = {};
    for (const [step, prim, acc] of h.cells) at[`${step}|${prim}`] = acc;
    for (const p of h.primitives) {
      const tr = el_("tr");
      tr.append(el_("th", "rg-prim", p));
      for (const s of h.steps) {
        const a = at[`${s}|${p}`];
        const td = el_("td", "rg-cell", a === undefined ? "" : pct(a));
        td.style.background = heatColor(a);
        td.title = `${p} at step ${s}: ${pct(a)}`;
        tr.append(td);
      }
      t.append(tr);
    }
    return t;
  };

  const spark = (points) => {  // accuracy (0..1) over probe runs, as an SVG line
    const w = 160, hgt = 28, n = points.length;
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
    svg.setAttribute("class", "rg-spark");
    const xy = points.map((p, i) => [n > 1 ? (i * (w - 4)) / (n - 1) + 2 : w / 2, hgt - 2 - p.accuracy * (hgt - 4)]);
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "));
    svg.append(line);
    for (const [x, y] of xy) {
      const c = document.createElementNS("http://www.w3.org/2000/svg", "circle");
      c.setAttribute("cx", x.toFixed(1));
      c.setAttribute("cy", y.toFixed(1));
      c.setAttribute("r", "2");
      svg.append(c);
    }
    return svg;
  };

  const passives = (h) => {
    const head = el_("div", "rg-head");
    head.append(el_("span", "rg-name", "🧠 Passives: the forgetting watch"),
                el_("span", "rg-muted", `${h.probe_runs || 0} probe runs · ${(h.mean_seconds || 0).toFixed(1)} s each · drop = ${h.drop_points ?? 10} points under the best`));
    const t = el_("table", "rg-passives");
    const th = el_("tr");
    th.append(el_("th", "", "passive"), el_("th", "", "accuracy over steps"), el_("th", "", "latest"),
              el_("th", "", "best"), el_("th", "", ""));
    t.append(th);
    for (const p of h.passives || []) {
      const tr = el_("tr", p.drop ? "rg-dropped" : "");
      tr.dataset.passive = p.passive;
      const pts = p.points || [];
      const cell = el_("td", "rg-sparkcell");
      if (pts.length) {
        cell.append(spark(pts));
        cell.title = pts.map((x) => `step ${x.step}: ${pct(x.accuracy)}`).join("\n");
      } else cell.append(el_("span", "rg-muted", "no probe yet"));
      const latest = el_("td", "", pct(p.latest));
      latest.dataset.stat = "latest";
      const flag = el_("td", "");
      if (p.drop) {
        const badge = el_("span", "rg-drop", "⚠ drop");
        badge.dataset.stat = "drop";
        flag.append(badge);
      }
      flag.append(button("📖 Review", "review", () => send("review", { passive: p.passive }), "rg-btn rg-small"));
      tr.append(el_("td", "rg-prim", p.name || p.passive), cell, latest, el_("td", "", pct(p.best)), flag);
      t.append(tr);
    }
    return [head, t];
  };

  const draw = () => {
    const s = state_(model);
    watch.replaceChildren(...(s.passives ? passives(s.passives) : []));
    showNotice(notice, s.notice, "rg");
    cards.replaceChildren(...(s.guild || []).map((k) => {
      const card = el_("div", "rg-card");
      card.dataset.skill = k.skill;
      const head = el_("div", "rg-head");
      const lvl = el_("span", "rg-level", `Level ${k.level} / ${k.max_level}`);
      lvl.dataset.stat = "level";
      head.append(el_("span", "rg-name", `${k.icon} ${k.name}`), lvl);
      const rule = k.rule || { accuracy: 0.8, consecutive_evals: 3 };
      const prog = el_("div", "rg-progress");
      prog.dataset.stat = "progress";
      prog.append(el_("span", "rg-muted", `to level ${k.level + 1}: ≥${pct(rule.accuracy)} on ${rule.consecutive_evals} evals in a row`));
      const dots = el_("div", "rg-dots");
      for (let i = 0; i < rule.consecutive_evals; i++) {
        const a = (k.recent || [])[i];
        const d = el_("span", `rg-dot ${a === undefined ? "rg-none" : a >= rule.accuracy ? "rg-pass" : "rg-fail"}`,
                      a === undefined ? "·" : pct(a));
        dots.append(d);
      }
      prog.append(dots);
      const weak = el_("div", "rg-weak");
      weak.dataset.stat = "weak";
      weak.append(el_("b", "", "Weakest: "));
      if (!(k.weak || []).length) weak.append(el_("span", "rg-muted", "none under the threshold (or no eval yet)"));
      for (const w of (k.weak || []).slice(0, 5)) weak.append(el_("span", "rg-chip", `${w.primitive_id} ${pct(w.accuracy)}`));
      const acts = el_("div", "rg-acts");
      const spar = button("🥊 Targeted sparring", "spar", () => send("spar", { skill: k.skill }), "rg-btn");
      const hm = button(open.has(k.skill) ? "Hide heatmap" : "🗺️ Heatmap", "heatmap", () => {
        open.has(k.skill) ? open.delete(k.skill) : open.add(k.skill);
        draw();
      }, "rg-btn");
      acts.append(spar, hm);
      card.append(head, prog, weak, acts);
      if (open.has(k.skill)) {
        const h = k.heatmap || { steps: [], primitives: [], cells: [] };
        card.append(h.cells.length ? heatmap(h) : el_("div", "rg-muted", "No evals with per-primitive results yet."));
      }
      return card;
    }));
  };
  return follow(model, el, draw);
}

export default { render };
