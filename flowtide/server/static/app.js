// Entry point: theme switch, the live indicator, the API token, then the page's module.
import { askToken, forgetToken, getToken, onLiveChange } from "./api.js";
import { notice } from "./util.js";

const body = document.body;
const main = document.getElementById("main");

function setupTheme() {
  const button = document.getElementById("theme");
  const label = () => {
    const dark = document.documentElement.dataset.theme === "dark";
    button.textContent = dark ? "Light theme" : "Dark theme";
    button.setAttribute("aria-label", dark ? "Switch to the light theme" : "Switch to the dark theme");
  };
  button.addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    try { localStorage.setItem("flowtide.theme", next); } catch { /* storage disabled */ }
    label();
  });
  label();
}

function setupLive() {
  const el = document.getElementById("live");
  onLiveChange((state) => {
    el.className = `live ${state === "live" ? "on" : state ? "off" : ""}`;
    el.textContent = state === "live" ? "Live" : state === "reconnecting" ? "Reconnecting…" : "";
  });
}

async function boot() {
  setupTheme();
  setupLive();
  const needsToken = body.dataset.auth === "token";
  if (needsToken) {
    const forget = document.getElementById("forget-token");
    forget.hidden = false;
    forget.addEventListener("click", () => { forgetToken(); window.location.reload(); });
    if (!getToken()) {
      main.replaceChildren(notice("This server requires an API token.", "info"));
      await askToken();
    }
  }
  const params = JSON.parse(body.dataset.params || "{}");
  try {
    const page = await import(`./pages/${body.dataset.page}.js`);
    main.replaceChildren();
    await page.mount(main, params);
    body.dataset.ready = "1"; // the first render is complete (tests and benchmarks wait on it)
  } catch (err) {
    console.warn(err);
    main.replaceChildren(notice(err && err.status === 404 ? err.message : `Could not load this page: ${err.message || err}`));
  }
}

boot();
