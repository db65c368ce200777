// Toasts: "Quest complete!", "Level up!", "New champion!", "Skill level up!",
// achievements and a failing battle's rescues (out of memory, loss alarms), from the ledger's events (state.toasts, newest first). Only events newer
// than the page are announced. Optional sound (Web Audio, no files), off by default.

const TITLES = {
  quest_completed: "📜 Quest complete!", hero_level_up: "⬆️ Level up!", champion: "🏆 New champion!",
  skill_level_up: "⭐ Skill level up!", achievement: "🎖️ Achievement!",
  // A failing battle's rescues (docs/engine.md "What happens when a battle fails").
  oom_backoff: "🧠 Out of memory: smaller batches", loss_alarm: "🚨 Loss alarm!",
  rollback: "⏪ Rolled back", setup_fault: "🛠️ Training waits for the setup",
  eval_backoff: "🧠 Eval out of memory: smaller batches",
};
const SOUND_KEY = "realm-sound";

function chime() {
  try {
    const ctx = new (window.AudioContext || window.webkitAudioContext)();
    [523.25, 659.25, 783.99].forEach((f, i) => {
      const o = ctx.createOscillator(), g = ctx.createGain();
      o.frequency.value = f;
      g.gain.setValueAtTime(0.0001, ctx.currentTime + i * 0.09);
      g.gain.exponentialRampToValueAtTime(0.15, ctx.currentTime + i * 0.09 + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + i * 0.09 + 0.3);
      o.connect(g).connect(ctx.destination);
      o.start(ctx.currentTime + i * 0.09);
      o.stop(ctx.currentTime + i * 0.09 + 0.32);
    });
  } catch (e) { /* no audio device: silence */ }
}

function render({ model, el }) {
  el.classList.add("realm-widget", "realm-toasts");
  const stack = el_("div", "rt-stack");
  stack.dataset.role = "toasts";
  const soundOn = () => localStorage.getItem(SOUND_KEY) === "on";
  const label = () => { sound.textContent = soundOn() ? "🔊 sound on" : "🔇 sound off"; };
  const sound = button("", "sound", () => {
    localStorage.setItem(SOUND_KEY, soundOn() ? "off" : "on");
    label();
  }, "rt-sound");
  label();
  // A realm away from its trainer says on every page whose hero it shows (toasts are on each).
  const away = el_("span", "rt-away");
  away.dataset.stat = "trainer-host";
  el.append(away, stack, sound);

  let since = null;
  const show = (t) => {
    const toast = el_("div", `rt-toast rt-${t.kind}`);
    toast.dataset.kind = t.kind;
    toast.append(el_("b", "rt-toast-title", TITLES[t.kind] || t.kind), el_("span", "rt-toast-msg", t.message));
    toast.addEventListener("click", () => toast.remove());
    stack.append(toast);
    setTimeout(() => toast.classList.add("rt-leaving"), 7000);
    setTimeout(() => toast.remove(), 7600);
  };
  const draw = () => {
    const trainer = state_(model).trainer;
    // Unreachable: the page keeps its last facts, and says they are stale and why.
    const lost = trainer && trainer.error ? " · unreachable: last known facts" : "";
    away.textContent = trainer ? `📡 on ${trainer.host} · read-only${lost}` : "";
    away.title = trainer ? (trainer.error || `the hero trains on ${trainer.host} (${trainer.url}); this page reads it there`) : "";
    away.classList.toggle("rt-lost", Boolean(lost));
    away.hidden = !trainer;
    const toasts = state_(model).toasts || [];
    const newest = toasts.reduce((m, t) => Math.max(m, t.ts), 0);
    if (since === null) {  // history is not news
      since = Math.max(newest, Date.now() / 1000 - 10);
      return;
    }
    // A notebook shows several pages, each with its toasts widget: one toast per event.
    const shown = (window.__realmToastsShown = window.__realmToastsShown || new Set());
    const fresh = toasts.filter((t) => t.ts > since).reverse().filter((t) => {
      const key = `${t.ts}|${t.kind}|${t.message}`;
      if (shown.has(key)) return false;
      shown.add(key);
      return true;
    });
    fresh.forEach(show);
    if (fresh.length && soundOn()) chime();
    since = Math.max(since, newest);
  };
  return follow(model, null, draw); // always on screen (fixed): it says nothing of the page being seen
}

export default { render };
