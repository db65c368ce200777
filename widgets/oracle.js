// The Oracle: pick a checkpoint (from the ledger or the loaded list), load it, chat
// with streaming tokens, see which model answered, duel two checkpoints on one prompt,
// and "ask DIO" a fresh skill problem. Every action goes back through the synced
// `action` property (Panel's anywidget adapter has no JS -> Python custom messages).

function render({ model, el }) {
  el.classList.add("realm-widget", "realm-oracle");
  const send = sender(model, () => ({ host: hostSel.value }));  // every action names its host
  const root = el_("div", "realm-card ro-box");
  const head = el_("div", "ro-head");
  const hostSel = el_("select", "ro-host");
  hostSel.dataset.role = "host";
  head.append(el_("span", "ro-title", "🔮 The Oracle"), el_("label", "ro-label", "host"), hostSel);
  const loaded = el_("div", "ro-loaded");
  loaded.dataset.stat = "loaded";

  const panes = {};
  const duel = el_("div", "ro-duel");
  for (const side of ["left", "right"]) {
    const pane = el_("div", `ro-pane ro-${side}`);
    pane.dataset.pane = side;
    const bar = el_("div", "ro-bar");
    const sel = el_("select", "ro-step");
    sel.dataset.role = "step";
    const load = button("Load", "load", () => sel.value !== "" && send("load", { step: Number(sel.value) }),
                        "ro-btn");
    const unload = button("Unload", "unload", () => sel.value !== "" && send("unload", { step: Number(sel.value) }),
                          "ro-btn ro-quiet");
    bar.append(sel, load, unload);
    const who = el_("div", "ro-who");
    who.dataset.stat = "answered-by";
    const log = el_("div", "ro-log");
    pane.append(bar, who, log);
    duel.append(pane);
    panes[side] = { sel, who, log };
  }

  const ask = el_("div", "ro-ask");
  const input = el_("textarea", "ro-input");
  input.placeholder = "Ask DIO…";
  input.rows = 2;
  const stepOf = (side) => (panes[side].sel.value === "" ? null : Number(panes[side].sel.value));
  const chatBtn = button("Send", "chat", () => {
    if (!input.value.trim()) return;
    send("chat", { pane: "left", step: stepOf("left"), message: input.value });
    input.value = "";
  }, "ro-btn ro-main");
  const duelBtn = button("⚔ Duel", "duel", () => {
    if (!input.value.trim()) return;
    send("duel", { left_step: stepOf("left"), right_step: stepOf("right"), message: input.value });
    input.value = "";
  }, "ro-btn");
  ask.append(input, chatBtn, duelBtn);

  const probes = el_("div", "ro-probes");
  const probeOut = el_("div", "ro-probe");
  probeOut.dataset.stat = "probe";
  const notice = notice_("ro");
  root.append(head, loaded, duel, ask, probes, probeOut, notice);
  el.append(root);

  const fillSelect = (sel, options) => {
    const keep = sel.value;
    const sig = JSON.stringify(options);
    if (sel.dataset.sig === sig) return;
    sel.dataset.sig = sig;
    sel.replaceChildren(...options.map(([v, t]) => { const o = el_("option", "", t); o.value = v; return o; }));
    if (options.some(([v]) => String(v) === keep)) sel.value = keep;
  };

  const draw = () => {
    const s = state_(model);
    fillSelect(hostSel, (s.hosts || ["local"]).map((h) => [h, h]));
    const loadedSteps = new Set((s.loaded || []).map((m) => m.step));
    const opts = [["", "— checkpoint —"], ...(s.checkpoints || []).map((c) =>
      [String(c.step), `${loadedSteps.has(c.step) ? "● " : ""}step ${c.step} · ${c.name}`])];
    loaded.replaceChildren(el_("span", "ro-label", "loaded:"), ...((s.loaded || []).length
      ? s.loaded.map((m) => {
          const chip = el_("button", "ro-chip", `${m.step} · ${m.model}`);
          chip.title = "chat with this one (left pane)";
          chip.addEventListener("click", () => { panes.left.sel.value = String(m.step); });
          return chip;
        })
      : [el_("span", "ro-muted", "nothing yet — pick a checkpoint and Load")]));
    for (const side of ["left", "right"]) {
      const p = (s.panes || {})[side] || {};
      const { sel, who, log } = panes[side];
      fillSelect(sel, opts);
      // A checkpoint answering on another host says so; the local pool's need not.
      const where = p.host && p.host !== "local" ? ` on ${p.host}` : "";
      who.textContent = p.model ? `answered by ${p.model}${where}` : "";
      who.title = p.model_path || "";
      log.replaceChildren(...(p.messages || []).map((m) => {
        const row = el_("div", `ro-msg ro-${m.role}`);
        row.append(el_("div", "ro-text", m.content || (p.busy ? "…" : "")));
        if (m.role === "assistant" && m.model) row.append(el_("div", "ro-model", m.model));
        return row;
      }));
      if (p.error) log.append(el_("div", "ro-error", p.error));
      log.scrollTop = log.scrollHeight;
    }
    const sig = JSON.stringify(s.skills || []);
    if (probes.dataset.sig !== sig) {
      probes.dataset.sig = sig;
      probes.replaceChildren(...(s.skills || []).map((k) => {
        const b = button(`Ask DIO · ${k.id.toUpperCase()} L${k.level}`, "probe",
                         () => send("probe", { skill: k.id, step: stepOf("left") }), "ro-btn");
        b.dataset.skill = k.id;
        return b;
      }));
    }
    const pr = s.probe || {};
    probeOut.replaceChildren();
    if (pr.busy) probeOut.append(el_("div", "ro-muted", `asking step ${pr.step}…`));
    else if (pr.error) probeOut.append(el_("div", "ro-error", pr.error));
    else if (pr.question) {
      const verdict = el_("b", pr.correct ? "ro-correct" : "ro-incorrect", pr.correct ? "✔ right" : "✘ wrong");
      verdict.dataset.stat = "verdict";
      probeOut.append(el_("div", "ro-q", `${pr.skill.toUpperCase()} L${pr.level}: ${pr.question}`),
                      el_("div", "ro-a", `DIO (${pr.model}): ${pr.content}`),
                      el_("div", "ro-e", `expected: ${pr.expected}`), verdict);
    }
    showNotice(notice, s.notice, "ro");
  };
  return follow(model, el, draw);
}

export default { render };
