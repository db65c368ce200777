// Settings: realm.toml's fields as a form, validated by the realm's own config models
// as you type (errors under each field); the VRAM calculator follows the form live;
// critical fields (max_length, base_model, ...) ask for confirmation before saving.

function parse(f, input) {
  if (f.kind === "bool") return input.checked;
  if (f.kind === "int" || f.kind === "float") return input.value.trim() === "" ? input.value : Number(input.value);
  if (f.kind === "list") return input.value.split(",").map((x) => x.trim()).filter(Boolean);
  if (f.kind === "json") {
    try { return JSON.parse(input.value); } catch (e) { return input.value; }  // the realm names the error
  }
  return input.value;
}

function render({ model, el }) {
  el.classList.add("realm-widget", "realm-settings");
  const send = sender(model);
  const root = el_("div", "realm-card rs-box");
  const title = el_("div", "rs-title", "⚙️ Settings");
  const path = el_("div", "rs-path");
  const cols = el_("div", "rs-cols");
  const form = el_("div", "rs-form");
  const side = el_("div", "rs-side");
  const vram = el_("div", "rs-vram");
  vram.dataset.stat = "vram";
  const confirmBox = el_("div", "rs-confirm");
  confirmBox.dataset.stat = "confirm";
  const save = button("💾 Save to realm.toml", "save", () => send("save", { changes: edits }), "rs-btn rs-primary");
  const notice = notice_("rs");
  side.append(vram, save, confirmBox, notice);
  cols.append(form, side);
  root.append(title, path, cols);
  el.append(root);

  let edits = {};
  let formKey = "";
  let timer = null;
  let lastNonce = null;
  const inputs = {};
  const errs = {};
  const preview = () => {
    clearTimeout(timer);
    timer = setTimeout(() => send("preview", { changes: edits }), 250);
  };

  const buildForm = (fields) => {
    form.replaceChildren();
    let section = null, box = null;
    for (const f of fields) {
      if (f.section !== section) {
        section = f.section;
        box = el_("fieldset", "rs-section");
        box.append(el_("legend", "", `[${section}]`));
        form.append(box);
      }
      const row = el_("label", "rs-field");
      row.dataset.key = f.key;
      const name = el_("span", "rs-name", f.name);
      if (f.critical) name.append(el_("span", "rs-crit", " ⚠"));
      let input;
      if (f.kind === "bool") {
        input = el_("input");
        input.type = "checkbox";
        input.checked = Boolean(edits[f.key] ?? f.value);
      } else if (f.kind === "choice") {
        input = el_("select");
        for (const c of f.choices) input.append(new Option(String(c), String(c)));
        input.value = String(edits[f.key] ?? f.value);
      } else {
        input = el_("input");
        input.type = f.kind === "int" || f.kind === "float" ? "number" : "text";
        if (f.kind === "float") input.step = "any";
        const v = edits[f.key] ?? f.value;
        input.value = f.kind === "json" ? JSON.stringify(v) : Array.isArray(v) ? v.join(", ") : String(v ?? "");
      }
      input.dataset.key = f.key;
      const bounds = Object.entries(f.bounds || {}).map(([k, v]) => `${k} ${v}`).join(", ");
      input.title = `${f.key}${bounds ? ` (${bounds})` : ""}; default ${JSON.stringify(f.default)}`;
      input.addEventListener(f.kind === "bool" || f.kind === "choice" ? "change" : "input", () => {
        const v = parse(f, input);
        if (JSON.stringify(v) === JSON.stringify(f.value)) delete edits[f.key];
        else edits[f.key] = v;
        row.classList.toggle("rs-edited", f.key in edits);
        preview();
      });
      const err = el_("span", "rs-err");
      err.dataset.error = f.key;
      row.append(name, input, err);
      row.classList.toggle("rs-edited", f.key in edits);
      inputs[f.key] = input;
      errs[f.key] = err;
      box.append(row);
    }
  };

  const draw = () => {
    const s = state_(model);
    const st = s.settings || {};
    const n = s.notice;
    if (n && n.nonce !== lastNonce) {
      lastNonce = n.nonce;
      if (n.ok && n.action === "save" && String(n.message).startsWith("saved")) edits = {};
    }
    const fields = st.fields || [];
    const key = JSON.stringify(fields.map((f) => [f.key, f.value]));
    if (key !== formKey) {
      formKey = key;
      buildForm(fields);
    }
    path.textContent = st.error ? `⚠ ${st.error}` : st.path || "";
    path.className = `rs-path ${st.error ? "rs-bad" : ""}`;
    const errors = s.errors || {};
    for (const [k, e] of Object.entries(errs)) e.textContent = errors[k] || "";
    const v = s.vram;
    if (v && !v.error) {
      const parts = ["weights", "gradients", "optimizer", "activations", "logits", "overhead"];
      const total = el_("div", "rs-vram-total", `🧮 VRAM ≈ ${gb(v.total)}`);
      total.dataset.stat = "vram-total";
      const bars = parts.map((p) => {
        const r = el_("div", "rs-vram-row");
        const bar = el_("div", "rs-vram-bar");
        const fill = el_("div", "rs-vram-fill");
        fill.style.width = `${Math.max(1, (100 * (v[p] || 0)) / v.total)}%`;
        bar.append(fill);
        r.append(el_("span", "rs-vram-name", p), bar, el_("span", "rs-vram-val", gb(v[p] || 0)));
        return r;
      });
      vram.replaceChildren(total, el_("div", "rs-muted", `${(v.params / 1e6).toFixed(1)}M parameters, full fine-tune`), ...bars);
    } else {
      vram.replaceChildren(el_("div", "rs-bad", `VRAM: ${v ? v.error : "…"}`));
    }
    const confirm = s.confirm || [];
    confirmBox.replaceChildren();
    if (confirm.length) {
      const yes = button("Confirm and save", "confirm", () => send("save", { changes: edits, confirm: true }),
                         "rs-btn rs-danger");
      confirmBox.append(el_("div", "", `⚠ ${confirm.join(", ")} change what DIO trains on or which model trains. Save anyway?`), yes);
    }
    showNotice(notice, n, "rs");
  };
  return follow(model, el, draw);
}

export default { render };
