// The model registry: each model's versions with their metrics, footprint and lineage; the
// accuracy against latency of its versions, Pareto front marked; and the verdicts of the
// optimisation runs (jobs) that made candidates of it.

import { listing, newest } from "../api.js";
import { chart, colour } from "../charts.js";
import { h, number, partial, table } from "../dom.js";

const JOBS = 200; // the newest jobs the optimisation verdicts are looked for in

export function render(root) {
  const body = h("div");
  root.append(h("h2", {}, "Models"), body);
  const drawn = [];
  (async () => {
    try {
      const [{ rows: models, complete }, jobs] = await Promise.all([
        listing("/models"),
        newest("/jobs", JOBS, { order: "newest" }),
      ]);
      body.append(partial(!complete, `Only the first ${models.length} model versions are ` +
        "shown: the hub holds more."));
      if (!models.length) {
        body.append(h("p", {}, "No model is registered yet: `edgestack train` registers one."));
      }
      const names = [...new Set(models.map((m) => m.name))].sort();
      const byDigest = new Map(models.map((m) => [m.digest, m]));
      for (const name of names) {
        const versions = models.filter((m) => m.name === name);
        const optimised = jobs.rows.filter((j) => j.kind === "optimise" && j.job.model === name);
        const plot = pareto(name, versions);
        if (plot) drawn.push(plot);
        body.append(h("section", { class: "model" }, h("h3", {}, name),
          versionTable(versions, byDigest), plot ? plot.node : null,
          optimised.length ? candidates(optimised, jobs.more) : null));
      }
    } catch (error) {
      body.append(h("p", { class: "error", role: "alert" }, `Cannot load models: ${error.message}`));
    }
  })();
  return () => drawn.forEach((c) => c.destroy());
}

function versionTable(versions, byDigest) {
  return table(["Version", "Digest", "Size", "Metrics", "Footprint", "Lineage"],
    versions.map((m) => {
      const f = m.manifest.footprint;
      const l = m.manifest.lineage;
      const parent = l?.parent ? byDigest.get(l.parent) : null;
      return h("tr", {},
        h("td", {}, `v${m.version}`),
        h("td", { class: "mono" }, m.digest.slice(0, 12)),
        h("td", {}, `${(m.size_bytes / 1024).toFixed(1)} KiB`),
        h("td", {}, Object.entries(m.manifest.metrics)
          .map(([k, v]) => `${k} ${number(v, 3)}`).join(", ") || "–"),
        h("td", {}, f ? `p99 ${number(f.latency_ms_p99, 3)} ms, RAM ` +
          `${(f.peak_ram_bytes / 1024).toFixed(0)} KiB` : "–"),
        h("td", {}, l ? [
          l.dataset ? `${l.dataset} v${l.dataset_version ?? "?"}` : "no dataset",
          `, ${l.trainer}`,
          l.optimisation ? `, ${l.optimisation}` : "",
          l.parent ? ` of ${parent ? `v${parent.version}` : l.parent.slice(0, 12)}` : "",
        ].join("") : "–"));
    }));
}

// Accuracy against p99 latency; a version no other beats on both is on the Pareto front.
function pareto(name, versions) {
  const points = versions
    .filter((m) => m.manifest.footprint && m.manifest.metrics.accuracy !== undefined)
    .map((m) => ({ x: m.manifest.footprint.latency_ms_p99, y: m.manifest.metrics.accuracy,
                   version: m.version }));
  if (points.length < 2) return null;
  const beaten = (p) => points.some((q) => q !== p && q.x <= p.x && q.y >= p.y &&
    (q.x < p.x || q.y > p.y));
  const front = points.filter((p) => !beaten(p));
  const rest = points.filter(beaten);
  const set = (label, data, i) => ({ label, data, backgroundColor: colour(i), pointRadius: 6 });
  return chart(`${name}: accuracy against latency (Pareto front)`, {
    type: "scatter",
    data: { datasets: [set("Pareto front", front, 0), set("dominated", rest, 1)] },
    options: {
      scales: { x: { title: { display: true, text: "p99 latency (ms)" } },
                y: { title: { display: true, text: "accuracy" } } },
      plugins: { tooltip: { callbacks: { label: (c) => `v${c.raw.version}: ` +
        `${number(c.raw.y, 3)} at ${number(c.raw.x, 3)} ms` } } },
    },
  });
}

function candidates(jobs, more) {
  const rows = jobs.flatMap((job) => (job.result?.candidates ?? []).map((c) =>
    h("tr", {}, h("td", {}, `job ${job.id}`), h("td", {}, c.name),
      h("td", { class: `badge ${c.status}` }, c.status), h("td", {}, c.reason))));
  return h("details", {}, h("summary", {}, "Optimisation candidates"),
    partial(more, `From the newest ${JOBS} jobs: older runs are not shown.`),
    rows.length ? table(["Run", "Candidate", "Verdict", "Why"], rows)
      : h("p", {}, "No optimisation run has finished yet."));
}
