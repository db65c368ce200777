// Hero card: DIO's portrait, level, XP bar and stats. Reads the synced `state`
// property ({hero: {...}}) written by the Python poller; same file in Jupyter and Panel.

const PORTRAIT = `
<svg viewBox="0 0 64 64" role="img" aria-label="DIO">
  <defs><linearGradient id="rt-steel" x1="0" x2="0" y1="0" y2="1">
    <stop offset="0" stop-color="#e8eef7"/><stop offset="1" stop-color="#8a9bb4"/></linearGradient></defs>
  <circle cx="32" cy="32" r="30" fill="#2b2150"/>
  <path d="M14 58 C16 44 24 40 32 40 C40 40 48 44 50 58 Z" fill="#7a3fb0"/>
  <path d="M20 30 C20 16 26 10 32 10 C38 10 44 16 44 30 L44 36 L20 36 Z" fill="url(#rt-steel)"/>
  <rect x="22" y="24" width="20" height="5" rx="2" fill="#1b1530"/>
  <circle cx="27" cy="26.5" r="1.6" fill="#ffd166"/><circle cx="37" cy="26.5" r="1.6" fill="#ffd166"/>
  <path d="M32 4 L35 12 L29 12 Z" fill="#ff6b6b"/>
</svg>`;

function render({ model, el }) {
  el.classList.add("realm-widget", "realm-hero-card");
  const card = el_("div", "realm-card rt-card");
  const portrait = el_("div", "rt-portrait");
  portrait.innerHTML = PORTRAIT;  // static markup, no user data
  const body = el_("div", "rt-body");
  const title = el_("div", "rt-title");
  const name = el_("span", "rt-name");
  const level = el_("span", "rt-level");
  level.dataset.stat = "level";
  title.append(name, level);
  const bar = el_("div", "rt-xpbar");
  const fill = el_("div", "rt-xpfill");
  bar.append(fill);
  const xp = el_("div", "rt-xptext");
  xp.dataset.stat = "xp";
  const stats = el_("div", "rt-stats");
  const cells = {};
  for (const [key, label, icon] of [["atk", "ATK", "⚔️"], ["defense", "DEF", "🛡️"],
                                     ["acc", "ACC", "🎯"], ["gold", "Gold", "🪙"]]) {
    const cell = el_("div", "rt-stat");
    const value = el_("b", "rt-value");
    value.dataset.stat = key;
    cell.append(el_("span", "rt-icon", icon), el_("span", "rt-label", label), value);
    stats.append(cell);
    cells[key] = value;
  }
  const badges = el_("div", "rt-badges");
  badges.dataset.stat = "skills";
  const banner = el_("div", "rt-banner", "LEVEL UP!");
  body.append(title, bar, xp, stats, badges);
  card.append(banner);
  card.append(portrait, body);
  el.append(card);

  let lastLevel = null;
  const memo = {};
  const draw = () => {
    const h = state_(model).hero || {};
    setText(name, (h.name || "DIO") + (h.host ? ` on ${h.host}` : ""));  // a trainer elsewhere
    setText(level, `Level ${h.level ?? 0}`);
    const per = h.xp_per_level || 1000;
    // A scale, not a width: a width animating lays the page out again at every frame of
    // its transition (JupyterLab's whole page: 15 layouts a second while DIO trains,
    // measured); a transform is only composited.
    const scale = `scaleX(${Math.min(1, (h.xp_into_level || 0) / per)})`;
    if (fill.style.transform !== scale) fill.style.transform = scale;
    setText(xp, `XP ${h.xp ?? 0}  (${h.xp_into_level ?? 0} / ${per} to next level)`);
    setText(cells.atk, num(h.atk, 3));
    setText(cells.defense, num(h.defense, 3));
    setText(cells.acc, pct(h.acc, 1));
    setText(cells.gold, String(h.gold ?? 0));
    const skills = state_(model).skills || [];
    whenChanged(memo, "skills", JSON.stringify(skills), () => badges.replaceChildren(...skills.map((sk) => {
      const b = el_("span", "rt-badge", `${sk.icon || "✨"} ${sk.skill.toUpperCase()} Lv ${sk.level}`);
      b.title = `${sk.name}: level ${sk.level} of ${sk.max_level}`;
      b.dataset.skill = sk.skill;
      return b;
    })));
    if (lastLevel !== null && h.level > lastLevel) {
      banner.textContent = `LEVEL UP! Level ${h.level}`;
      card.classList.remove("rt-levelup");
      void card.offsetWidth;  // restart the animation
      card.classList.add("rt-levelup");
    }
    lastLevel = h.level ?? 0;
  };
  return follow(model, el, draw);
}

export default { render };
