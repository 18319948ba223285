// Hub jobs (training, optimising, evaluating, trade-offs): state, progress, outcome and log;
// operators cancel.

import { api, newest } from "../api.js";
import { every, h, partial, say, serialised, status, table, time } from "../dom.js";
import { EVENT } from "../feed.js";

const REFRESH_MS = 3000;
const SHOWN = 50; // the newest jobs the page shows

export function render(root, ctx) {
  const result = status();
  const body = h("div");
  const log = h("pre", { class: "log", hidden: true });
  root.append(h("h2", {}, "Jobs"), result, body, log);

  const showLog = async (job) => {
    try {
      const { lines } = await api(`/jobs/${job.id}/log`);
      log.hidden = false;
      log.textContent = `job ${job.id}\n${lines.join("\n")}`;
    } catch (error) {
      say(result, `Job ${job.id}: ${error.message}`, false);
    }
  };
  const cancel = async (job) => {
    try {
      await api(`/jobs/${job.id}/cancel`, { method: "POST" });
      say(result, `Job ${job.id} cancelled.`);
    } catch (error) {
      say(result, `Job ${job.id}: ${error.message}`, false);
    }
    refresh();
  };

  const refresh = serialised(async () => {
    try {
      const { rows: jobs, more } = await newest("/jobs", SHOWN, { order: "newest" });
      body.replaceChildren(partial(more, `The newest ${SHOWN} jobs: \`edgestack jobs list\` ` +
        "lists older ones."), jobs.length ? table(
        ["Job", "Kind", "State", "Progress", "Submitted", "Outcome", ""],
        jobs.map((job) => h("tr", {},
          h("td", {}, job.id), h("td", {}, job.kind),
          h("td", {}, h("span", { class: `badge ${job.state}` }, job.state)),
          h("td", {}, h("progress", { max: 1, value: job.progress }), ` ${job.step ?? ""}`),
          h("td", {}, time(job.submitted_at)),
          h("td", {}, job.error ?? (job.result ? summary(job.result) : "")),
          h("td", {},
            h("button", { type: "button", onclick: () => showLog(job) }, "Log"),
            ctx.may("operator") && ["queued", "running"].includes(job.state)
              ? h("button", { type: "button", onclick: () => cancel(job) }, "Cancel") : null))))
        : h("p", {}, "No job yet."));
    } catch (error) {
      say(result, `Cannot load jobs: ${error.message}`, false);
    }
  });
  const stop = every(REFRESH_MS, refresh);
  window.addEventListener(EVENT, refresh);
  return () => {
    stop();
    window.removeEventListener(EVENT, refresh);
  };
}

function summary(result) {
  if (result.choices) return `${result.choices.length} policies measured on ${result.rows} rows`;
  if (result.model) return `registered ${result.model.name} v${result.model.version}`;
  if (result.metrics?.accuracy !== undefined) return `accuracy ${result.metrics.accuracy.toFixed(3)}`;
  return "done";
}
