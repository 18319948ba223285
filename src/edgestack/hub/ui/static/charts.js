// Charts drawn with Chart.js, which the hub serves from its own copy; without it each chart
// says so in its place and the page goes on working.

import { h } from "./dom.js";

const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777"];

export function colour(i) {
  return COLOURS[i % COLOURS.length];
}

// A chart in a figure with a caption; `update(config)` redraws it with new data.
export function chart(caption, config) {
  const figure = h("figure", { class: "chart" }, h("figcaption", {}, caption));
  if (!window.Chart) {
    figure.append(h("p", { class: "muted" },
      "Charts unavailable: the hub has no copy of Chart.js (run `make` on the hub)."));
    return { node: figure, update() {}, destroy() {} };
  }
  const canvas = h("canvas", { role: "img", "aria-label": caption });
  figure.append(canvas);
  const drawn = new window.Chart(canvas, withDefaults(config));
  return {
    node: figure,
    update(next) {
      drawn.data = next.data;
      drawn.update("none");
    },
    destroy() {
      drawn.destroy();
    },
  };
}

function withDefaults(config) {
  return {
    ...config,
    options: {
      animation: false,
      maintainAspectRatio: false,
      ...config.options,
    },
  };
}
