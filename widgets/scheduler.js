// The Scheduler: the curriculum per skill (level, recent evals, review levels,
// priority), the Task Master's tasks (priority, resource, cooldown, next run, last
// outcome, notebook parameters such as counts, eval sizes and thresholds), and "run
// now", and where tasks run: one machine, or in cluster mode each Ray node with its
// resources and the realm tasks it runs. Needs the Task Master (Realm.tasks); says so
// without it.

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

function render({ model, el }) {
  el.classList.add("realm-widget", "realm-scheduler");
  const send = sender(model);
  const root = el_("div", "realm-card rk-box");
  const notice = notice_("rk");
  const body = el_("div", "rk-body");
  root.append(el_("div", "rk-title", "⏳ The Scheduler"), notice, body);
  el.append(root);

  const draw = () => {
    const s = state_(model);
    showNotice(notice, s.notice, "rk");
    const cur = el_("div", "rk-section");
    cur.append(el_("div", "rk-head", "📚 Curriculum"));
    for (const c of s.curriculum || []) {
      const r = el_("div", "rk-row");
      r.dataset.skill = c.skill;
      const info = el_("div", "rk-info");
      info.append(el_("b", "", `${c.icon || ""} ${c.name || c.skill}`),
                  el_("span", "rk-meta", `level ${c.level}/${c.max_level} · recent ${(c.recent || []).map(pct).join(" ") || "—"}` +
                      ` · review ${(c.review_levels || []).join(", ") || "—"}`));
      const acts = el_("div", "rk-acts");
      const on = el_("input");
      on.type = "checkbox";
      on.checked = c.enabled !== false;
      on.dataset.role = "skill-enabled";
      on.addEventListener("change", () => send("skill", { skill: c.skill, enabled: on.checked }));
      const pr = el_("input", "rk-num");
      pr.type = "number";
      pr.min = "0";
      pr.value = String(c.priority ?? 1);
      pr.dataset.role = "skill-priority";
      pr.addEventListener("change", () => send("skill", { skill: c.skill, priority: Number(pr.value) }));
      acts.append(el_("label", "rk-meta", "on"), on, el_("label", "rk-meta", "priority"), pr);
      r.append(info, acts);
      cur.append(r);
    }
    const tasks = el_("div", "rk-section");
    tasks.append(el_("div", "rk-head", "🗓️ Tasks"));
    for (const t of s.tasks || []) {
      const r = el_("div", "rk-row rk-task");
      r.dataset.task = t.task_id;
      const info = el_("div", "rk-info");
      const status = el_("span", `rk-status rk-${t.last_status || "never"}`, t.last_status || "never run");
      status.dataset.stat = "last-status";
      info.append(el_("b", "", t.name || t.task_id), status,
                  el_("span", "rk-meta", `priority ${t.priority} · ${t.resource} · cooldown ${Math.round(t.cooldown_s)}s` +
                      ` · last ${when(t.last_run)} · next ${when(t.next_eligible)}`));
      if (t.detail) info.append(el_("span", "rk-meta", String(t.detail)));
      for (const p of t.problems || []) info.append(el_("span", "rk-meta rk-problem", p));
      const params = el_("div", "rk-params");
      for (const [key, value] of Object.entries(t.parameters || {})) {
        const inp = el_("input", typeof value === "number" ? "rk-num" : "rk-text");
        if (typeof value === "boolean") {
          inp.type = "checkbox";
          inp.checked = value;
        } else {
          inp.type = typeof value === "number" ? "number" : "text";
          if (typeof value === "number") inp.step = Number.isInteger(value) ? "1" : "any";
          inp.value = String(value);
        }
        inp.dataset.role = "param";
        inp.dataset.param = key;
        inp.title = key;
        inp.addEventListener("change", () => {
          const v = typeof value === "boolean" ? inp.checked : typeof value === "number" ? Number(inp.value) : inp.value;
          send("set_task", { task_id: t.task_id, parameters: { [key]: v } });
        });
        params.append(el_("label", "rk-meta", key), inp);
      }
      if (params.childElementCount) info.append(params);
      const acts = el_("div", "rk-acts");
      const en = el_("input");
      en.type = "checkbox";
      en.checked = t.enabled !== false;
      en.dataset.role = "enabled";
      en.title = "enabled";
      en.addEventListener("change", () => send("set_task", { task_id: t.task_id, enabled: en.checked }));
      const pr = el_("input", "rk-num");
      pr.type = "number";
      pr.value = String(t.priority);
      pr.dataset.role = "priority";
      pr.addEventListener("change", () => send("set_task", { task_id: t.task_id, priority: Number(pr.value) }));
      const run = button("▶ Run now", "run", () => send("run", { task_id: t.task_id }), "rk-btn");
      acts.append(el_("label", "rk-meta", "on"), en, el_("label", "rk-meta", "prio"), pr, run);
      r.append(info, acts);
      tasks.append(r);
    }
    body.replaceChildren(cur, tasks, clusterSection(s.cluster || {}));
  };
  return follow(model, el, draw);
}

// Where tasks run ([cluster] in realm.toml): a line in one-machine mode, else a row per node.
function clusterSection(c) {
  const sec = el_("div", "rk-section rk-cluster");
  sec.append(el_("div", "rk-head", `🖧 Cluster · ${c.engine || "local"}`));
  if (c.detail) sec.append(el_("span", "rk-meta", String(c.detail)));
  const res = (r) => Object.entries(r || {}).map(([k, v]) => `${k} ${v}`).join(", ") || "—";
  for (const n of c.nodes || []) {
    const r = el_("div", "rk-row rk-node");
    r.dataset.node = n.node_id;
    const info = el_("div", "rk-info");
    info.append(el_("b", "", `${n.alive ? "🟢" : "⚫"} ${n.address || "?"} · ${(n.roles || []).join(", ") || "no role"}`),
                el_("span", "rk-meta", `resources ${res(n.resources)} · in use ${res(n.in_use)}`));
    for (const t of n.running || []) {
      info.append(el_("span", "rk-meta rk-running", `running ${t.task} ${t.checkpoint} (step ${t.step})`));
    }
    r.append(info);
    sec.append(r);
  }
  return sec;
}

export default { render };
