// The console's entry point: hash routes (#/playground, the default; #/account; #/admin, with
// #/admin/accounts|models|usage|engines), the theme (the system's, or the one chosen with the
// toggle, kept in localStorage) and the pages, each built once when first opened.

import { Account } from "/console/account.js";
import { Admin } from "/console/admin.js";
import { Playground } from "/console/playground.js";

const THEME = "switchyard.theme";
const views = {
  playground: { el: document.getElementById("view-playground"), make: (el) => new Playground(el), title: "Playground" },
  account: { el: document.getElementById("view-account"), make: (el) => new Account(el), title: "My account" },
  admin: { el: document.getElementById("view-admin"), make: (el) => new Admin(el), title: "Operator console" },
};
let current = null;

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const name = views[parts[0]] ? parts[0] : "playground";
  const sub = parts[1] || undefined;
  const moved = current !== name;
  if (current && moved && views[current].page) views[current].page.hide();
  for (const [id, view] of Object.entries(views)) view.el.hidden = id !== name;
  for (const link of document.querySelectorAll("nav.main-nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const view = views[name];
  if (!view.page) view.page = view.make(view.el);
  document.title = `${view.title} · Switchyard`;
  view.page.show(sub);
  if (moved && current !== null) {
    const heading = view.el.querySelector("h1");
    if (heading) heading.focus({ preventScroll: false });
  }
  current = name;
}

// ---- theme ----

function systemTheme() {
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function applyTheme() {
  const chosen = localStorage.getItem(THEME);
  const theme = chosen === "dark" || chosen === "light" ? chosen : systemTheme();
  document.documentElement.dataset.theme = theme;
  const toggle = document.getElementById("theme-toggle");
  if (toggle) {
    // A toggle button: its name stays "Dark mode", aria-pressed says whether it is on.
    toggle.setAttribute("aria-pressed", theme === "dark" ? "true" : "false");
    toggle.title = theme === "dark" ? "Dark mode is on: switch to light" : "Dark mode is off: switch to dark";
  }
}

document.getElementById("theme-toggle").addEventListener("click", () => {
  const now = document.documentElement.dataset.theme;
  localStorage.setItem(THEME, now === "dark" ? "light" : "dark");
  applyTheme();
});
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", applyTheme);

applyTheme();
window.addEventListener("hashchange", route);
route();
document.documentElement.classList.add("ready");
