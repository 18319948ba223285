// A device's trade-off: the accuracy of each way to answer (the device alone, joint inference
// at each offload fraction, a split net, the cloud alone) against its latency or the bytes the
// device sends, from the newest tradeoff job of the device that succeeded. Operators run
// another: the hub's worker measures it as `edgestack tradeoff` does.

import { api, listing, newest, PAGE } from "../api.js";
import { chart, colour } from "../charts.js";
import { ago, h, number, say, table } from "../dom.js";

const JOBS = PAGE; // the newest succeeded jobs the device's trade-off is looked for in
const AXES = {
  latency_ms: "latency per window (ms)",
  uplink_bytes: "uplink bytes per window",
};
const ENDED = ["succeeded", "failed", "cancelled"];

// The panel of device `deviceId`: `refresh(device)` on each refresh of its page.
export function tradeoffPanel(deviceId, ctx) {
  // Live but not role=status: the page's one status line stays the controls' answer.
  const result = h("p", { class: "status", "aria-live": "polite" });
  const facts = h("p", { class: "summary" });
  const figure = h("div", { class: "charts" });
  const rows = h("div");
  let axis = "latency_ms";
  let plot = null;
  let shown = null; // the job drawn
  let pending = null; // the id of the job this page ran, until it ends
  let stale = true; // the newest job must be looked for again
  let form = null;

  const pick = h("select", { name: "axis", onchange: (event) => {
    axis = event.target.value;
    draw();
  } }, Object.entries(AXES).map(([value, text]) => h("option", { value }, text)));
  const section = h("section", { class: "tradeoff", "aria-label": "trade-off" },
    h("h3", {}, "Trade-off"), result, facts, h("label", {}, "Plot accuracy against ", pick),
    figure, rows);

  const draw = () => {
    plot?.destroy();
    plot = null;
    if (!shown) {
      figure.replaceChildren();
      return;
    }
    const choices = shown.result.choices;
    plot = chart(`Accuracy against ${AXES[axis]}, per policy`, {
      type: "scatter",
      // One set per policy: the legend names each point.
      data: { datasets: choices.map((c, i) => ({
        label: c.policy, data: [{ x: c[axis], y: c.accuracy }], backgroundColor: colour(i),
        pointRadius: 6,
      })) },
      options: {
        scales: { x: { title: { display: true, text: AXES[axis] } },
                  y: { title: { display: true, text: "accuracy" } } },
        plugins: { tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ` +
          `${number(c.raw.y, 3)} at ${number(c.raw.x, 1)}` } } },
      },
    });
    figure.replaceChildren(plot.node);
  };

  const show = (job, more) => {
    shown = job ?? null;
    if (!job) {
      facts.textContent = "No trade-off measured for this device yet" +
        (more ? ` in the newest ${JOBS} jobs that succeeded` : "") +
        (ctx.may("operator") ? ": run one below." : "; an operator runs one.");
      rows.replaceChildren();
      draw();
      return;
    }
    const r = job.result;
    facts.textContent = `${r.model.name} v${r.model.version} on ${deviceId} (${r.profile}) ` +
      `beside ${r.cloud.name} v${r.cloud.version} on the cloud tier; ${r.rows} held-out rows ` +
      `of ${r.dataset} v${r.dataset_version}; ${r.link.bandwidth_kb_s} kB/s, ` +
      `${r.link.rtt_ms} ms round trip; job ${job.id}, ${ago(job.finished_at)}`;
    rows.replaceChildren(table(
      ["Policy", "Accuracy", "Offloaded", "Latency (ms)", "Uplink (B)", "Energy (mJ)"],
      r.choices.map((c) => h("tr", { dataset: { policy: c.policy } },
        h("th", {}, c.policy), h("td", {}, number(c.accuracy, 4)),
        h("td", {}, `${Math.round(100 * c.offload_fraction)}%`),
        h("td", {}, number(c.latency_ms, 2)), h("td", {}, number(c.uplink_bytes, 0)),
        h("td", {}, number(c.energy_mj, 3))))),
      h("p", { class: "muted" }, "Per window; energy is the device's: its compute and the " +
        "bytes its radio sends."));
    draw();
  };

  const follow = async () => {
    const job = await api(`/jobs/${pending}`);
    if (!ENDED.includes(job.state)) return;
    pending = null;
    stale = true;
    if (job.state === "succeeded") say(result, `Trade-off: job ${job.id} measured it.`);
    else say(result, `Trade-off: job ${job.id} ${job.state}: ${job.error ?? ""}`, false);
  };

  const run = async (values) => {
    const [model, version] = values.model.split("@");
    const [cloud, cloudVersion] = values.cloud ? values.cloud.split("@") : [null, null];
    try {
      const job = await api("/jobs", { method: "POST", body: { job: {
        kind: "tradeoff", model, version: Number(version), device: deviceId, cloud,
        cloud_version: cloudVersion ? Number(cloudVersion) : null,
        bandwidth_kb_s: Number(values.bandwidth_kb_s), rtt_ms: Number(values.rtt_ms),
        fractions: values.fractions.split(",").filter((f) => f.trim()).map(Number),
      } } });
      pending = job.id;
      say(result, `Trade-off: job ${job.id} queued; the chart follows when it ends.`);
    } catch (error) {
      say(result, `Trade-off: ${error.message}`, false);
    }
  };

  return {
    node: section,
    async refresh(device) {
      try {
        if (ctx.may("operator") && !form) {
          form = await runForm(device, run);
          section.append(form);
        }
        if (pending !== null) await follow();
        if (!stale) return;
        const { rows: jobs, more } = await newest("/jobs", JOBS,
          { state: "succeeded", order: "newest" });
        stale = false;
        const job = jobs.find((j) => j.kind === "tradeoff" && j.job.device === deviceId);
        if (!job || job.id !== shown?.id) show(job, more);
      } catch (error) {
        say(result, `Cannot load the trade-off: ${error.message}`, false);
      }
    },
    // A job ended somewhere: it may be a newer trade-off of this device.
    jobEnded() {
      stale = true;
    },
    destroy() {
      plot?.destroy();
    },
  };
}

// The operator's form: the device's model (the one it runs, first) and the server's (the one
// its offload policy names, first), the link, and the offload fractions.
async function runForm(device, run) {
  const { rows: models } = await listing("/models");
  const value = (m) => `${m.name}@${m.version}`;
  const runs = device.desired.bundle;
  const newestFirst = [...models].reverse();
  const rank = (m) => (runs && m.digest === runs.digest ? 0 : 1);
  const ordered = [...newestFirst].sort((a, b) => rank(a) - rank(b));
  const offload = device.desired.offload?.model;
  const options = (list) => list.map((m) => h("option", { value: value(m) },
    `${m.name} v${m.version}`));
  const input = (label, name, type, fallback, limits = {}) => h("label", {}, `${label} `,
    h("input", { name, type, value: fallback, required: true, ...limits }));
  return h("form", { "aria-label": "Run a trade-off", onsubmit: (event) => {
    event.preventDefault();
    run(Object.fromEntries(new FormData(event.target)));
  } }, h("fieldset", {}, h("legend", {}, "Run a trade-off"),
    h("label", {}, "Device model ", h("select", { name: "model", required: true },
      options(ordered))),
    h("label", {}, "Cloud model ", h("select", { name: "cloud" },
      offload ? h("option", { value: "" }, `its offload policy's (${offload.name} ` +
        `v${offload.version})`) : null,
      options(newestFirst))),
    input("Uplink (kB/s)", "bandwidth_kb_s", "number", 250, { min: 1, step: "any" }),
    input("Round trip (ms)", "rtt_ms", "number", 30, { min: 0, step: "any" }),
    input("Offload fractions", "fractions", "text", "0.05,0.1,0.2,0.5"),
    h("button", { type: "submit" }, "Run trade-off")));
}
