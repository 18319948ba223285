// Rollouts: each wave's devices, state and gate readings, and the operator's buttons.

import { api, newest } from "../api.js";
import { every, h, number, partial, say, serialised, status, table, time } from "../dom.js";
import { EVENT } from "../feed.js";

const REFRESH_MS = 3000;
const SHOWN = 20; // the newest rollouts the page shows
const LIVE = ["shadowing", "held", "paused"];
const ACTIONS = [
  ["promote", "Promote wave", ["shadowing", "held"]],
  ["pause", "Pause", ["shadowing", "held"]],
  ["resume", "Resume", ["paused"]],
  ["rollback", "Roll back", LIVE],
  ["abort", "Abort", LIVE],
];

export function render(root, ctx) {
  const result = status();
  const body = h("div");
  root.append(h("h2", {}, "Rollouts"), result, body);

  const act = async (rollout, action) => {
    try {
      await api(`/rollouts/${rollout.id}/${action}`, { method: "POST" });
      say(result, `Rollout ${rollout.id}: ${action} done.`);
    } catch (error) {
      say(result, `Rollout ${rollout.id}: ${error.message}`, false);
    }
    refresh();
  };

  const refresh = serialised(async () => {
    try {
      const { rows: rollouts, more } = await newest("/rollouts", SHOWN, { order: "newest" });
      body.replaceChildren(...(rollouts.length ? [
        partial(more, `The newest ${SHOWN} rollouts: \`edgestack rollout list\` lists ` +
          "older ones."),
        ...rollouts.map((r) => card(r, ctx, act)),
      ] : [h("p", {}, "No rollout yet: `edgestack rollout start` begins one.")]));
    } catch (error) {
      say(result, `Cannot load rollouts: ${error.message}`, false);
    }
  });
  const stop = every(REFRESH_MS, refresh);
  window.addEventListener(EVENT, refresh);
  return () => {
    stop();
    window.removeEventListener(EVENT, refresh);
  };
}

function card(rollout, ctx, act) {
  const c = rollout.candidate;
  const promoted = rollout.waves.filter((w) => w.state === "promoted").length;
  const buttons = ctx.may("operator") ? ACTIONS.filter(([, , states]) =>
    states.includes(rollout.state)).map(([action, label]) =>
    h("button", { type: "button", onclick: () => act(rollout, action) }, label)) : [];
  return h("section", { class: "rollout", dataset: { rollout: rollout.id } },
    h("h3", {}, `#${rollout.id}: ${c.name} v${c.version} `,
      h("span", { class: `badge ${rollout.state}` }, rollout.state)),
    h("p", {}, `started ${time(rollout.created_at)}, wave ${rollout.wave + 1} of `,
      `${rollout.waves.length}, ${promoted} promoted `,
      h("progress", { max: rollout.waves.length, value: promoted })),
    buttons.length ? h("p", { class: "actions" }, buttons) : null,
    table(["Wave", "Devices", "State", "Gate readings", "Verdict"], rollout.waves.map((w, i) =>
      h("tr", {}, h("td", {}, i + 1), h("td", {}, w.devices.join(", ")),
        h("td", {}, h("span", { class: `badge ${w.state}` }, w.state)),
        h("td", {}, readings(w.readings)), h("td", {}, w.verdict ?? "")))));
}

function readings(r) {
  if (!r) return "–";
  const parts = [`${r.windows} windows`];
  if (r.agreement !== null) parts.push(`agreement ${number(r.agreement)}`);
  if (r.accuracy !== null) parts.push(`accuracy ${number(r.accuracy)} on ${r.labelled}`);
  if (r.p99_ms !== null) parts.push(`p99 ${number(r.p99_ms, 1)} ms`);
  if (r.error_rate !== null) parts.push(`errors ${number(r.error_rate, 3)}`);
  if (r.drift_psi !== null) parts.push(`PSI ${number(r.drift_psi)}`);
  if (r.short.length) parts.push(`waiting for ${r.short.join(", ")}`);
  if (r.failed.length) parts.push(`failed on ${r.failed.join(", ")}`);
  return parts.join("; ");
}
