// Datasets: what each holds by label and device, and a viewer that draws one sample's window.

import { api, listing } from "../api.js";
import { chart, colour } from "../charts.js";
import { h, partial, table, time } from "../dom.js";

const SAMPLES = 500; // the newest samples the per-device counts and the viewer look at

export function render(root) {
  const body = h("div");
  const viewer = h("section", { class: "viewer" });
  root.append(h("h2", {}, "Datasets"), body, viewer);
  let drawn = null;
  (async () => {
    try {
      const { rows: datasets, complete } = await listing("/datasets");
      body.append(partial(!complete, `Only the first ${datasets.length} datasets are ` +
        "shown: the hub holds more."), datasets.length ? table(["Dataset", "Samples", "Labels",
        "Devices", "Frozen versions"], datasets.map((d) => h("tr", {}, h("td", {}, d.name),
        h("td", {}, d.counts.total), h("td", {}, counts(d.counts.labels)),
        h("td", {}, counts(d.counts.devices)), h("td", {}, d.versions))))
        : h("p", {}, "No data collected yet: set a device collecting on its page."));
      const page = await api("/samples", { params: { order: "newest", limit: SAMPLES } });
      if (!page.samples.length) return;
      viewer.append(h("h3", {}, `Labels per device, newest ${page.samples.length} samples`),
        perDevice(page.samples));
      const choose = h("select", { "aria-label": "sample" }, page.samples.map((s, i) =>
        h("option", { value: i }, `${time(s.at)} ${s.device_id}: ${s.label}`)));
      const figure = h("div");
      const draw = () => {
        drawn?.destroy();
        const sample = page.samples[Number(choose.value)];
        drawn = sampleChart(sample, page.specs[sample.spec]);
        figure.replaceChildren(drawn.node);
      };
      choose.addEventListener("change", draw);
      viewer.append(h("h3", {}, "Sample viewer"),
        h("p", { class: "muted" }, "A window's signal where its model takes the raw samples " +
          "(the raw extractor); otherwise the features the device computed from it."),
        choose, figure);
      draw();
    } catch (error) {
      body.append(h("p", { class: "error", role: "alert" }, `Cannot load datasets: ${error.message}`));
    }
  })();
  return () => drawn?.destroy();
}

// The raw extractor names its columns channel.s0, channel.s1, ...: those are the signal.
const RAW = /^(.+)\.s(\d+)$/;

function sampleChart(sample, spec) {
  const names = spec ? spec.features : sample.features.map((_, i) => `f${i}`);
  const where = `${sample.device_id}, ${sample.label}`;
  const signals = new Map();
  names.forEach((name, i) => {
    const raw = name.match(RAW);
    if (!raw) return;
    if (!signals.has(raw[1])) signals.set(raw[1], []);
    signals.get(raw[1]).push(sample.features[i]);
  });
  if (signals.size) {
    const length = Math.max(...[...signals.values()].map((v) => v.length));
    const seconds = (i) => (spec ? (i / spec.rate_hz).toFixed(3) : i);
    return chart(`${where}: the window's signal`, {
      type: "line",
      data: {
        labels: Array.from({ length }, (_, i) => seconds(i)),
        datasets: [...signals].map(([channel, values], i) => ({
          label: channel, data: values, borderColor: colour(i), pointRadius: 0,
        })),
      },
      options: { scales: { x: { title: { display: true, text: "seconds" } } } },
    });
  }
  return chart(`${where}: the window's features (${spec ? spec.sensors.join(", ") : "unknown spec"})`, {
    type: "bar",
    data: { labels: names, datasets: [{ label: sample.label, data: sample.features,
      backgroundColor: colour(0) }] },
  });
}

function counts(byName) {
  return Object.entries(byName).map(([name, n]) => `${name} ${n}`).join(", ") || "–";
}

function perDevice(samples) {
  const labels = [...new Set(samples.map((s) => s.label))].sort();
  const devices = [...new Set(samples.map((s) => s.device_id))].sort();
  return table(["Device", ...labels], devices.map((d) => h("tr", {}, h("td", {}, d),
    labels.map((l) => h("td", {}, samples.filter((s) => s.device_id === d && s.label === l)
      .length)))));
}
