// Quest board: the queue by priority (sizes, estimated time), upload a quest file
// (validated by the realm; the report is shown inline), generate a skill quest, change
// priority, reorder, start, delete; failed quests with their reasons; recently completed.
// Actions go back through the synced `action` property.

function bytes(n) {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KB` : `${n} B`;
}

function render({ model, el }) {
  el.classList.add("realm-widget", "realm-quest-board");
  const send = sender(model);
  const root = el_("div", "realm-card rq-box");
  const title = el_("div", "rq-title", "📜 Quest board");

  // Upload
  const upload = el_("div", "rq-row rq-upload");
  const file = el_("input");
  file.type = "file";
  file.accept = ".jsonl,.json,.parquet";
  file.dataset.role = "file";
  const prio = el_("select", "rq-select");
  prio.dataset.role = "upload-priority";
  for (const p of ["normal", "high", "low"]) prio.append(new Option(p, p));
  const up = button("⬆ Upload quest", "upload", () => {
    const f = file.files && file.files[0];
    if (!f) return;
    const reader = new FileReader();
    reader.onload = () => {
      const b64 = String(reader.result).split(",", 2)[1] || "";
      send("upload", { filename: f.name, content_b64: b64, priority: prio.value });
      file.value = "";
    };
    reader.readAsDataURL(f);
  }, "rq-btn");
  upload.append(el_("span", "rq-label", "Upload"), file, prio, up);

  // Generate
  const gen = el_("div", "rq-row rq-generate");
  const skill = el_("select", "rq-select");
  skill.dataset.role = "skill";
  const level = el_("input", "rq-num");
  level.type = "number"; level.min = "1"; level.value = "1"; level.dataset.role = "level";
  const count = el_("input", "rq-num");
  count.type = "number"; count.min = "1"; count.value = "200"; count.dataset.role = "count";
  const go = button("✨ Generate", "generate", () =>
    send("generate", { skill: skill.value, level: Number(level.value), count: Number(count.value) }), "rq-btn");
  gen.append(el_("span", "rq-label", "Generate"), skill, el_("span", "rq-label", "level"), level,
             el_("span", "rq-label", "examples"), count, go);

  const notice = notice_("rq");
  const report = el_("pre", "rq-report");
  report.dataset.stat = "report";
  const lists = el_("div", "rq-lists");
  root.append(title, upload, gen, notice, report, lists);
  el.append(root);

  let skillsKey = "";
  const pending = new Set();  // delete buttons waiting for their confirmation click
  const row = (q, state, idx, total) => {
    const tr = el_("div", "rq-quest");
    tr.dataset.quest = q.name;
    tr.dataset.state = state;
    const info = el_("div", "rq-info");
    info.append(el_("b", "rq-name", q.name),
                el_("span", "rq-meta", [q.examples ? `${q.examples} examples` : null, bytes(q.bytes),
                                        q.eta_seconds ? `≈${duration(q.eta_seconds)}` : null].filter(Boolean).join(" · ")));
    if (q.reason) info.append(el_("span", "rq-reason", q.reason));
    const acts = el_("div", "rq-acts");
    if (["high", "normal", "low"].includes(state)) {
      const sel = el_("select", "rq-select");
      sel.dataset.role = "priority";
      for (const p of ["high", "normal", "low"]) sel.append(new Option(p, p, p === state, p === state));
      sel.addEventListener("change", () => send("priority", { quest: q.name, priority: sel.value }));
      acts.append(sel,
        button("▲", "up", () => send("move", { quest: q.name, position: Math.max(0, idx - 1) }), `rq-btn ${idx === 0 ? "rq-dim" : ""}`),
        button("▼", "down", () => send("move", { quest: q.name, position: idx + 1 }), `rq-btn ${idx === total - 1 ? "rq-dim" : ""}`),
        button("▶ Start", "start", () => send("start", { quest: q.name }), "rq-btn"));
    }
    if (state !== "processing") {
      const confirming = pending.has(q.name);
      acts.append(button(confirming ? "Confirm delete" : "🗑", "delete", () => {
        if (pending.has(q.name)) { pending.delete(q.name); send("delete", { quest: q.name }); }
        else { pending.add(q.name); draw(); }
      }, `rq-btn ${confirming ? "rq-danger" : ""}`));
    }
    tr.append(info, acts);
    return tr;
  };
  const section = (label, state, entries) => {
    const sec = el_("div", "rq-section");
    sec.dataset.section = state;
    sec.append(el_("div", "rq-head", `${label} (${entries.length})`));
    if (!entries.length) sec.append(el_("div", "rq-empty", "—"));
    entries.forEach((q, i) => sec.append(row(q, state, i, entries.length)));
    return sec;
  };
  const draw = () => {
    const s = state_(model);
    const skills = s.skills || [];
    const key = skills.map((k) => k.skill).join(",");
    if (key !== skillsKey) {
      skill.replaceChildren(...skills.map((k) => new Option(`${k.icon} ${k.name}`, k.skill)));
      skillsKey = key;
    }
    const n = s.notice;
    showNotice(notice, n, "rq");
    report.textContent = n && n.detail ? n.detail : "";
    report.style.display = n && n.detail ? "block" : "none";
    const q = s.queue || {};
    const done = (q.recently_completed || []).slice().reverse().slice(0, 10);
    lists.replaceChildren(
      section("⚔️ In training", "processing", q.processing || []),
      section("🔥 High", "high", q.high || []),
      section("📦 Normal", "normal", q.normal || []),
      section("💤 Low", "low", q.low || []),
      section("❌ Failed", "failed", q.failed || []),
      section("✅ Recently completed", "recently_completed", done));
  };
  return follow(model, el, draw);
}

export default { render };
