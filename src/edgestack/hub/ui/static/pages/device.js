// One device: live charts of what it predicts, how sure it is and how fast; its twin, desired
// beside reported; its trade-off of answering alone or with a server; and, for operators, the
// controls that change its desired state.

import { api } from "../api.js";
import { chart, colour } from "../charts.js";
import { ago, bundle, every, h, say, serialised, status, table, time } from "../dom.js";
import { EVENT } from "../feed.js";
import { tradeoffPanel } from "./tradeoff.js";

const REFRESH_MS = 2000;
const BATCHES = 60; // the charts show the latest this many telemetry batches

export function render(root, ctx, id) {
  const path = `/devices/${encodeURIComponent(id)}`;
  const title = h("h2", {}, id);
  const facts = h("p", { class: "summary" });
  const problem = h("p", { class: "error", role: "alert" });
  const twin = h("div", { class: "twin" });
  const charts = liveCharts();
  const trade = tradeoffPanel(id, ctx);
  root.append(title, facts, problem, h("div", { class: "charts" }, charts.nodes),
    h("h3", {}, "Twin"), twin, trade.node);
  let controls = null;

  const refresh = serialised(async () => {
    try {
      const device = await api(path);
      problem.textContent = "";
      facts.textContent = `${device.reported?.status ?? "not reported"} · last seen ` +
        `${ago(device.last_seen)} · profile ${device.profile} · ` +
        `${device.telemetry.windows} windows classified` +
        Object.entries(device.tags).map(([key, value]) => ` · ${key}=${value}`).join("");
      twin.replaceChildren(twinTable(device));
      charts.drift(device.telemetry);
      if (ctx.may("operator") && !controls) {
        controls = await controlsFor(device, path, refresh);
        root.append(controls);
      }
      await charts.follow(path);
      await trade.refresh(device);
    } catch (error) {
      problem.textContent = `Cannot load ${id}: ${error.message}`;
    }
  });

  const onEvent = (message) => {
    if (message.detail.event.kind === "job_succeeded") trade.jobEnded();
    if (message.detail.device_id === id) refresh();
  };
  const stop = every(REFRESH_MS, refresh);
  window.addEventListener(EVENT, onEvent);
  return () => {
    stop();
    window.removeEventListener(EVENT, onEvent);
    charts.destroy();
    trade.destroy();
  };
}

// Predictions per label, mean confidence and latency of each telemetry batch, followed with
// after_id so each refresh fetches only the batches that are new.
function liveCharts() {
  const batches = [];
  let after = null;
  const fromZero = { scales: { y: { beginAtZero: true } } };
  const predictions = chart("Predictions per batch", {
    type: "line", data: { datasets: [] }, options: fromZero,
  });
  const confidence = chart("Mean confidence", {
    type: "line", data: { datasets: [] }, options: { scales: { y: { min: 0, max: 1 } } },
  });
  const latency = chart("Latency (ms)", {
    type: "line", data: { datasets: [] }, options: fromZero,
  });

  // The device sends no feature values, only how far each feature drifted from training.
  const drift = chart("Input drift per feature (PSI, rolling)", {
    type: "bar", data: { datasets: [] }, options: fromZero,
  });

  const redraw = () => {
    const labels = batches.map((b) => time(b.batch.end));
    const names = [...new Set(batches.flatMap((b) => Object.keys(b.batch.predictions)))].sort();
    const line = (label, values, i) => ({
      label, data: values, borderColor: colour(i), backgroundColor: colour(i), spanGaps: true,
    });
    predictions.update({ data: { labels, datasets: names.map((name, i) =>
      line(name, batches.map((b) => b.batch.predictions[name] ?? 0), i)) } });
    confidence.update({ data: { labels, datasets: [
      line("mean confidence", batches.map((b) => b.batch.mean_confidence), 0)] } });
    latency.update({ data: { labels, datasets: [
      line("p50", batches.map((b) => b.batch.latency_ms_p50), 0),
      line("p95", batches.map((b) => b.batch.latency_ms_p95), 1)] } });
  };

  return {
    nodes: [predictions.node, confidence.node, latency.node, drift.node],
    drift(totals) {
      const scores = totals.drift_psi_by_feature;
      drift.update({ data: { labels: Object.keys(scores), datasets: [{
        label: `PSI over ${totals.drift_windows} windows`, data: Object.values(scores),
        backgroundColor: colour(3),
      }] } });
    },
    async follow(path) {
      const page = after === null
        ? (await api(`${path}/telemetry`, { params: { order: "newest", limit: BATCHES } }))
          .reverse()
        : await api(`${path}/telemetry`, { params: { after_id: after, limit: BATCHES } });
      if (page.length) after = page[page.length - 1].id;
      else if (after === null) after = 0;
      if (!page.length && batches.length) return;
      batches.push(...page);
      batches.splice(0, Math.max(0, batches.length - BATCHES));
      redraw();
    },
    destroy() {
      [predictions, confidence, latency, drift].forEach((c) => c.destroy());
    },
  };
}

function twinTable(device) {
  const d = device.desired;
  const r = device.reported;
  const rules = (x) => (x ? `${x.normal_label} normal; min confidence ${x.min_confidence}; ` +
    `raise after ${x.trigger_windows}, clear after ${x.clear_windows} windows` : "the app's");
  const rows = [
    ["Version", d.version, r ? r.desired_version : "–"],
    ["Model", bundle(d.bundle), r ? bundle(r.bundle) : "–"],
    ["Shadow", bundle(d.shadow), r ? bundle(r.shadow) : "–"],
    ["App", d.stopped ? "stopped" : "running", r ? r.status : "–"],
    ["Alarm rule", rules(d.rules), r?.rules ? rules(r.rules) : "not said"],
    ["Telemetry every", `${d.telemetry_interval_s} s`, "–"],
    ["Profile", d.profile ?? "by hardware", device.profile],
    ["Fault injected", d.fault ? `${d.fault.kind} (severity ${d.fault.severity}, ` +
      `noise ${d.fault.noise})` : "none", "–"],
    ["Collecting", d.collect ? `${d.collect.label} into ${d.collect.dataset}` : "no", "–"],
    ["Error", "–", r?.error ?? "none"],
  ];
  return table(["", "Desired", "Reported"], rows.map(([name, desired, reported]) =>
    h("tr", { dataset: { field: name.toLowerCase().replaceAll(" ", "-") } },
      h("th", {}, name), h("td", { class: "desired" }, desired),
      h("td", { class: "reported" }, reported))));
}

// The operator's controls; each sends one change of the desired state (or an undeployment)
// and shows the hub's answer, refused or not.
async function controlsFor(device, path, refresh) {
  const result = status();
  const send = async (what, call) => {
    try {
      await call();
      say(result, `${what}: sent; the device applies it on its next poll.`);
      refresh();
    } catch (error) {
      say(result, `${what}: ${error.message}`, false);
    }
  };
  const patch = (what, body) => send(what, () => api(`${path}/desired`, { method: "PATCH", body }));
  const rules = device.desired.rules ?? device.reported?.rules ??
    { normal_label: "normal", min_confidence: 0.7, trigger_windows: 4, clear_windows: 8 };
  const profiles = await api("/profiles").catch(() => []);

  const ruleForm = form("Alarm rule", [
    field("Normal label", "normal_label", "text", rules.normal_label),
    field("Min confidence", "min_confidence", "number", rules.min_confidence,
      { min: 0, max: 1, step: 0.01 }),
    field("Raise after (windows)", "trigger_windows", "number", rules.trigger_windows,
      { min: 1, max: 1000, step: 1 }),
    field("Clear after (windows)", "clear_windows", "number", rules.clear_windows,
      { min: 1, max: 1000, step: 1 }),
  ], "Set rule", (values) => patch("Alarm rule", { rules: {
    normal_label: values.normal_label,
    min_confidence: Number(values.min_confidence),
    trigger_windows: Number(values.trigger_windows),
    clear_windows: Number(values.clear_windows),
  } }), h("button", { type: "button", onclick: () => patch("Alarm rule", { rules: null }) },
    "Use the app's rule"));

  const intervalForm = form("Telemetry", [
    field("Interval (s)", "telemetry_interval_s", "number", device.desired.telemetry_interval_s,
      { min: 0.2, max: 3600, step: 0.1 }),
  ], "Set interval", (values) => patch("Telemetry interval",
    { telemetry_interval_s: Number(values.telemetry_interval_s) }));

  const profileForm = form("Profile", [
    h("label", {}, "Profile ", h("select", { name: "profile" },
      h("option", { value: "" }, "by its hardware"),
      profiles.map((p) => h("option", { value: p.name, selected: p.name === device.desired.profile },
        `${p.name}: ${p.description}`)))),
  ], "Set profile", (values) => patch("Profile", { profile: values.profile || null }));

  const faultForm = form("Inject a fault (simulated sources)", [
    field("Kind", "kind", "text", device.desired.fault?.kind ?? "imbalance"),
    field("Severity", "severity", "number", device.desired.fault?.severity ?? 1,
      { min: 0, max: 10, step: 0.1 }),
    field("Noise", "noise", "number", device.desired.fault?.noise ?? 1,
      { min: 0, max: 100, step: 0.1 }),
  ], "Inject", (values) => patch("Fault", { fault: {
    kind: values.kind, severity: Number(values.severity), noise: Number(values.noise),
  } }), h("button", { type: "button", onclick: () => patch("Fault", { fault: null }) },
    "Clear fault"));

  const collectForm = form("Collect labelled data", [
    field("Label", "label", "text", device.desired.collect?.label ?? "normal"),
    field("Dataset", "dataset", "text", device.desired.collect?.dataset ?? "default"),
  ], "Start collecting", (values) => patch("Collection", { collect: values }),
  h("button", { type: "button", onclick: () => patch("Collection", { collect: null }) },
    "Stop collecting"));

  const app = h("fieldset", {}, h("legend", {}, "App"),
    h("button", { type: "button", onclick: () => patch("Start", { stopped: false }) }, "Start"),
    h("button", { type: "button", onclick: () => patch("Stop", { stopped: true }) }, "Stop"),
    h("button", { type: "button", class: "danger", onclick: () => {
      if (window.confirm(`Undeploy the model from ${device.device_id}?`)) {
        send("Undeploy", () => api("/undeployments", { method: "POST",
          body: { devices: [device.device_id] } }));
      }
    } }, "Undeploy model"));

  return h("section", { class: "controls", "aria-label": "controls" },
    h("h3", {}, "Controls"), result,
    h("div", { class: "forms" }, ruleForm, intervalForm, profileForm, app, faultForm,
      collectForm));
}

function field(label, name, type, value, limits = {}) {
  return h("label", {}, `${label} `, h("input", { name, type, value, required: true, ...limits }));
}

function form(legend, fields, submit, onValues, ...extra) {
  return h("form", { "aria-label": legend, onsubmit: (event) => {
    event.preventDefault();
    onValues(Object.fromEntries(new FormData(event.target)));
  } }, h("fieldset", {}, h("legend", {}, legend), fields,
    h("button", { type: "submit" }, submit), extra));
}
