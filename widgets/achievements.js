// Achievements: every milestone DIO has earned, with its date (from the ledger's
// `achievements` table via Realm.achievements()).

function render({ model, el }) {
  el.classList.add("realm-widget", "realm-achievements");
  const box = el_("div", "realm-card rt-ach-box");
  const title = el_("div", "rt-ach-title");
  const list = el_("ul", "rt-ach-list");
  list.dataset.stat = "achievements";
  box.append(title, list);
  el.append(box);
  const draw = () => {
    const all = state_(model).achievements || [];
    title.textContent = `🎖️ Achievements (${all.length})`;
    if (!all.length) {
      list.replaceChildren(el_("li", "rt-ach-empty", "None yet: finish a quest, train 1,000 steps, promote a champion…"));
      return;
    }
    list.replaceChildren(...all.slice().reverse().map((a) => {
      const li = el_("li", "rt-ach");
      li.dataset.achievement = a.achievement_id;
      li.title = a.description;
      li.append(el_("b", "rt-ach-name", a.name), el_("span", "rt-ach-desc", a.description),
                el_("time", "rt-ach-date", new Date(a.ts * 1000).toLocaleString()));
      return li;
    }));
  };
  return follow(model, el, draw);
}

export default { render };
