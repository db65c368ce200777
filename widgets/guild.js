// The Guild: each skill's level and its progress to the next (the last evals at the
// level against the level-up rule), the weakest primitives, a per-primitive accuracy
// heatmap over checkpoints, and targeted sparring on the weak spots.

const pct = (x) => (x === null || x === undefined ? "—" : `${Math.round(100 * x)}%`);
function heatColor(a) {  // red (0) -> amber -> green (1)
  if (a === null || a === undefined) return "transparent";
  const h = Math.round(120 * Math.max(0, Math.min(1, a)));
  return `hsl(${h}, 65%, 45%)`;
}

function render({ model, el }) {
  el.classList.add("realm-guild");
  const send = sender(model);
  const root = el_("div", "rg-box");
  const notice = notice_("rg");
  const cards = el_("div", "rg-cards");
  root.append(el_("div", "rg-title", "🛡️ The Guild"), notice, cards);
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

  const draw = () => {
    const s = state_(model);
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
  return follow(model, draw);
}

export default { render };
