// The dashboard's shell: login, the page for the address's #fragment, and the live feed.

import { api, ApiError, UNAUTHORIZED } from "./api.js";
import { h } from "./dom.js";
import { startFeed } from "./feed.js";
import * as datasets from "./pages/datasets.js";
import * as device from "./pages/device.js";
import * as fleet from "./pages/fleet.js";
import * as jobs from "./pages/jobs.js";
import * as models from "./pages/models.js";
import * as rollouts from "./pages/rollouts.js";

const ROLES = ["viewer", "operator", "admin"];
const ROUTES = [
  [/^#\/fleet$/, fleet.render],
  [/^#\/devices\/(.+)$/, device.render],
  [/^#\/models$/, models.render],
  [/^#\/rollouts$/, rollouts.render],
  [/^#\/datasets$/, datasets.render],
  [/^#\/jobs$/, jobs.render],
];

const $ = (id) => document.getElementById(id);
let identity = null;
let leavePage = () => {};
let stopFeed = () => {};

// What pages are told of the caller: `may("operator")` shows the controls.
function context() {
  return {
    role: identity.role,
    may: (role) => ROLES.indexOf(identity.role) >= ROLES.indexOf(role),
  };
}

function show() {
  leavePage();
  leavePage = () => {};
  const page = $("page");
  page.replaceChildren();
  if (!identity) return;
  const hash = location.hash || "#/fleet";
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("current", hash.startsWith(link.getAttribute("href")));
  }
  for (const [pattern, render] of ROUTES) {
    const match = hash.match(pattern);
    if (match) {
      // A container of its own: what a page adds after it was left lands nowhere.
      const own = h("div");
      page.append(own);
      leavePage = render(own, context(), ...match.slice(1).map(decodeURIComponent)) || leavePage;
      return;
    }
  }
  page.append(h("p", {}, "No such page. ", h("a", { href: "#/fleet" }, "See the fleet.")));
}

function loggedIn(who) {
  identity = who;
  $("login").hidden = true;
  $("nav").hidden = $("who").hidden = $("feed").hidden = false;
  $("identity").textContent = `${who.name} (${who.role})`;
  document.body.dataset.role = who.role;
  stopFeed = startFeed($("events"), $("feed-state"), $("speak"));
  show();
}

function loggedOut(reason = "") {
  identity = null;
  stopFeed();
  stopFeed = () => {};
  show();
  $("login").hidden = false;
  $("nav").hidden = $("who").hidden = $("feed").hidden = true;
  $("login-error").textContent = reason;
  delete document.body.dataset.role;
}

$("login").addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  const token = new FormData($("login")).get("token");
  try {
    const who = await api("/login", { method: "POST", body: { token } });
    $("login").reset();
    loggedIn(who);
  } catch (error) {
    $("login-error").textContent = error.message;
  }
});

$("logout").addEventListener("click", async () => {
  await api("/logout", { method: "POST" }).catch(() => {});
  loggedOut();
});

window.addEventListener(UNAUTHORIZED, () => {
  if (identity) loggedOut("Your login has ended; log in again.");
});
window.addEventListener("hashchange", show);

try {
  loggedIn(await api("/me"));
} catch (error) {
  loggedOut(error instanceof ApiError && error.status === 401 ? "" : error.message);
}
