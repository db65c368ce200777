// Vault browser: checkpoints with their ledger stats, sorted by a metric; promote the
// champion; delete (confirmed; the champion and the checkpoint in use are refused);
// export a clean HF directory; copy to another zone; zones and disk use.

function render({ model, el }) {
  el.classList.add("realm-widget", "realm-vault-browser");
  const send = sender(model);
  const root = el_("div", "realm-card rv-box");
  const head = el_("div", "rv-head");
  const sort = el_("select", "rv-select");
  sort.dataset.role = "sort";
  for (const [v, l] of [["step", "newest"], ["loss", "loss ↑"], ["val_loss", "val loss ↑"]]) sort.append(new Option(l, v));
  head.append(el_("span", "rv-title", "🏦 The Vault"), el_("span", "rv-label", "sort by"), sort);
  const disk = el_("div", "rv-disk");
  disk.dataset.stat = "disk";
  const notice = notice_("rv");
  const table = el_("div", "rv-table");
  const zones = el_("div", "rv-zones");
  zones.dataset.stat = "zones";
  root.append(head, disk, notice, table, zones);
  el.append(root);

  let confirming = null;
  const dests = {};  // typed export folders survive redraws
  const kept = new Map();  // step -> the row drawn last time (keyedRows)
  const draw = () => {
    const s = state_(model);
    showNotice(notice, s.notice, "rv");
    const d = s.disk || {};
    if (d.total) {
      const bar = el_("div", "rv-bar");
      const used = el_("div", "rv-used");
      used.style.width = `${(100 * d.used) / d.total}%`;
      bar.append(used);
      disk.replaceChildren(el_("span", "", `💽 ${gb(d.free)} free of ${gb(d.total)} · checkpoints ${gb(d.checkpoints || 0)}`), bar);
    }
    const prot = s.protected || {};
    const zoneIds = (s.zones || []).map((z) => z.zone_id);
    const key = sort.value;
    const rows = (s.checkpoints || []).slice().sort((a, b) =>
      key === "step" ? b.step - a.step : (a[key] ?? Infinity) - (b[key] ?? Infinity));
    // A row is rebuilt only when what it shows changed.
    const sigOf = (c) => JSON.stringify([c, s.champion === c.step, prot[String(c.step)] || null, zoneIds,
      confirming === c.step]);
    keyedRows(table, rows, (c) => c.step, sigOf, (c) => {
      const r = el_("div", "rv-row");
      r.dataset.step = String(c.step);
      const info = el_("div", "rv-info");
      const name = el_("b", "rv-name", c.name);
      if (s.champion === c.step) name.prepend(el_("span", "rv-champ", "🏆 "));
      info.append(name, el_("span", "rv-meta",
        `step ${c.step} · loss ${num(c.loss, 4)} · val ${num(c.val_loss, 4)} · ${c.date || ""}` +
        `${c.skill ? ` · ${c.skill} L${c.skill_level ?? "?"}` : ""} · zones: ${(c.zones || []).join(", ") || "none"}`));
      if (prot[String(c.step)]) info.append(el_("span", "rv-prot", `🔒 ${prot[String(c.step)]}`));
      const acts = el_("div", "rv-acts");
      if (!(c.zones || []).length) {  // deleted: the ledger keeps its history
        r.classList.add("rv-gone");
        info.append(el_("span", "rv-meta", "not in any zone (deleted; its ledger history stays)"));
        r.append(info, acts);
        return r;
      }
      if (s.champion !== c.step) acts.append(button("🏆 Promote", "promote", () => send("promote", { step: c.step }), "rv-btn"));
      const dest = el_("input", "rv-dest");
      dest.placeholder = "export as (a name under exports/)…";
      dest.dataset.role = "export-dest";
      dest.value = dests[c.step] || "";
      dest.addEventListener("input", () => { dests[c.step] = dest.value; });
      acts.append(dest, button("📤 Export", "export", () => send("export", { step: c.step, dest: dest.value }), "rv-btn"));
      const others = zoneIds.filter((z) => !(c.zones || []).includes(z));
      if (others.length) {
        const zsel = el_("select", "rv-select");
        zsel.dataset.role = "zone";
        others.forEach((z) => zsel.append(new Option(z, z)));
        acts.append(zsel, button("⇄ Copy", "transfer", () => send("transfer", { asset_id: c.asset_id, zone: zsel.value }), "rv-btn"));
      }
      const isConf = confirming === c.step;
      const del = button(isConf ? "Confirm delete" : "🗑 Delete", "delete", () => {
        if (confirming === c.step) { confirming = null; send("delete", { step: c.step }); }
        else { confirming = c.step; draw(); }
      }, `rv-btn ${isConf ? "rv-danger" : ""}`);
      if (prot[String(c.step)]) { del.disabled = true; del.title = `refused: ${prot[String(c.step)]}`; }
      acts.append(del);
      r.append(info, acts);
      return r;
    }, kept);
    if (!rows.length) table.replaceChildren(el_("div", "rv-empty", "No checkpoints yet: DIO saves one every few steps of a quest."));
    zones.replaceChildren(el_("b", "", "Zones: "), ...(s.zones || []).map((z) => el_("span", "rv-zone", `${z.zone_id} (${z.url})`)));
  };
  sort.addEventListener("change", draw);
  return follow(model, draw);
}

export default { render };
