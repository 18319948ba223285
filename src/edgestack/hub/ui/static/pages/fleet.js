// The fleet at a glance: each device's status, model, health, last contact and open alerts.

import { listing, newest } from "../api.js";
import { ago, bundle, every, h, number, partial, serialised, table } from "../dom.js";
import { EVENT } from "../feed.js";

const REFRESH_MS = 3000;
const RECENT = 500; // the events the alarm column looks back over

export function render(root) {
  const summary = h("p", { class: "summary" });
  const body = h("div");
  const problem = h("p", { class: "error", role: "alert" });
  root.append(h("h2", {}, "Fleet"), summary, problem, body);

  const refresh = serialised(async () => {
    try {
      const [devices, open, events] = await Promise.all([
        listing("/devices"),
        listing("/alerts", { open: true }),
        newest("/events", RECENT, { order: "newest" }),
      ]);
      problem.textContent = "";
      draw(devices, open, events);
    } catch (error) {
      problem.textContent = `Cannot load the fleet: ${error.message}`;
    }
  });

  const draw = ({ rows: devices, complete }, { rows: open, complete: allAlerts }, events) => {
    const running = devices.filter((d) => d.reported?.status === "running").length;
    const atLeast = (all) => (all ? "" : "at least ");
    summary.textContent = `${atLeast(complete)}${devices.length} devices, ${running} running ` +
      `a model, ${atLeast(allAlerts)}${open.length} open alerts`;
    const alarming = alarms(events.rows);
    const alertsOf = (id) => open.filter((a) => a.device_id === id);
    body.replaceChildren(...(devices.length ? [
      partial(!complete, `Only the first ${devices.length} devices are shown: the hub ` +
        "holds more."),
      table(["Device", "Status", "Model", "Sees now", "Health", "Last seen", "Alarm",
        "Alerts"],
        devices.map((d) => row(d, alarming.get(d.device_id), alertsOf(d.device_id)))),
      partial(events.more, `The Alarm column reads the newest ${RECENT} events: an alarm ` +
        "raised before them is not shown."),
    ] : [h("p", {}, "No device has enrolled yet: start an agent with `edgestack agent`.")]));
  };

  const stop = every(REFRESH_MS, refresh);
  window.addEventListener(EVENT, refresh);
  return () => {
    stop();
    window.removeEventListener(EVENT, refresh);
  };
}

// The label each device raised an alarm for and has not cleared, as the newest events say.
function alarms(events) {
  const latest = new Map();
  for (const view of events) {
    const kind = view.event.kind;
    if ((kind === "alarm_raised" || kind === "alarm_cleared") && !latest.has(view.device_id)) {
      latest.set(view.device_id, kind === "alarm_raised" ? view.event.label : null);
    }
  }
  return new Map([...latest].filter(([, label]) => label));
}

function row(device, alarm, alerts) {
  const reported = device.reported;
  const status = reported?.status ?? "not reported";
  const desired = device.desired.bundle;
  const running = reported?.bundle;
  const converging = desired && (!running || running.digest !== desired.digest);
  return h("tr", { dataset: { device: device.device_id } },
    h("td", {}, h("a", { href: `#/devices/${encodeURIComponent(device.device_id)}` },
      device.device_id)),
    h("td", {}, h("span", { class: `badge ${status.replace(" ", "-")}` }, status)),
    h("td", {}, bundle(running), converging ? h("span", { class: "muted" },
      ` → ${bundle(desired)}`) : null),
    h("td", { class: "now" }, seesNow(device.telemetry)),
    h("td", {}, health(device)),
    h("td", {}, ago(device.last_seen)),
    h("td", { class: alarm ? "alerting" : "" }, alarm ?? "none"),
    h("td", { class: alerts.length ? "alerting" : "" },
      alerts.length ? alerts.map((a) => a.signal).join(", ") : "none"));
}

// The labels of the device's latest batch, most windows first.
function seesNow(totals) {
  const latest = Object.entries(totals.latest_predictions).sort((a, b) => b[1] - a[1]);
  return latest.length ? latest.map(([label, n]) => `${label} ${n}`).join(", ") : "–";
}

function health(device) {
  const t = device.telemetry;
  const problems = [];
  if (device.reported?.error) problems.push(device.reported.error);
  if (t.failed_chunks) problems.push(`${t.failed_chunks} failed chunks`);
  const bad = Object.values(t.bad_input).reduce((a, b) => a + b, 0);
  if (bad) problems.push(`${bad} bad inputs`);
  if (t.drift_psi !== null && t.drift_psi !== undefined) problems.push(`drift PSI ${number(t.drift_psi)}`);
  const latency = t.p95_ms ?? t.latency_ms_p95;
  if (latency !== null && latency !== undefined) problems.push(`p95 ${number(latency, 1)} ms`);
  return problems.length ? problems.join("; ") : "ok";
}
