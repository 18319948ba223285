// The live feed: the latest events, then each new one as the hub stores it, over
// Server-Sent Events; new alarms and alerts are spoken when the operator switches it on.

import { api } from "./api.js";
import { h, time } from "./dom.js";

// protocol.EventKind: the stream names each message after its event's kind, and an
// EventSource hands a named message only to a listener of that name.
export const EVENT_KINDS = [
  "alarm_raised", "alarm_cleared", "model_loaded", "error", "bundle_refused", "load_failed",
  "model_failed", "outbox_dropped",
  "device_enrolled", "device_reenrolled", "reenrol_refused", "store_corrupt", "alert_raised",
  "alert_cleared", "rollout_started", "rollout_wave_started", "rollout_wave_promoted",
  "rollout_wave_held", "rollout_rolled_back", "rollout_paused", "rollout_resumed",
  "rollout_aborted", "rollout_completed", "job_started", "job_succeeded", "job_failed",
  "job_cancelled", "job_progress", "policy_triggered", "policy_step", "policy_succeeded",
  "policy_failed", "retention_run",
];
const SPOKEN = new Set(["alarm_raised", "alert_raised"]);
const SHOWN = 50;
const SPEAK_KEY = "edgestack.speak";
// Pages listen for this to refresh what an event changed, without reloading.
export const EVENT = "edgestack:event";

export function startFeed(list, state, speakSwitch) {
  speakSwitch.checked = localStorage.getItem(SPEAK_KEY) === "on";
  speakSwitch.onchange = () => {
    localStorage.setItem(SPEAK_KEY, speakSwitch.checked ? "on" : "off");
    if (!speakSwitch.checked) window.speechSynthesis?.cancel();
  };
  let source = null;
  let stopped = false;

  const show = (view, fresh) => {
    list.prepend(item(view, fresh));
    while (list.children.length > SHOWN) list.lastChild.remove();
    if (fresh && speakSwitch.checked && SPOKEN.has(view.event.kind)) speak(spoken(view));
  };

  (async () => {
    let latest = [];
    try {
      latest = await api("/events", { params: { order: "newest", limit: 20 } });
    } catch (error) {
      state.textContent = `(not loaded: ${error.message})`;
    }
    if (stopped) return;
    latest.reverse().forEach((view) => show(view, false));
    const after = latest.length ? latest[latest.length - 1].id : 0;
    // EventSource reconnects by itself, resuming after the last id it saw (Last-Event-ID).
    source = new EventSource(`/api/v1/events/stream?after_id=${after}`);
    source.onopen = () => { state.textContent = `(live; the newest ${SHOWN} shown)`; };
    source.onerror = () => { state.textContent = "(reconnecting…)"; };
    for (const kind of EVENT_KINDS) {
      source.addEventListener(kind, (message) => {
        const view = JSON.parse(message.data);
        show(view, true);
        window.dispatchEvent(new CustomEvent(EVENT, { detail: view }));
      });
    }
  })();

  return () => {
    stopped = true;
    source?.close();
    list.replaceChildren();
    state.textContent = "";
  };
}

function item(view, fresh) {
  const { event } = view;
  return h("li", { class: `event ${event.severity}${fresh ? " fresh" : ""}`,
                   dataset: { kind: event.kind, id: view.id } },
    h("time", { datetime: view.received_at }, time(view.received_at)), " ",
    h("strong", {}, event.kind), " ",
    view.device_id ? h("a", { href: `#/devices/${encodeURIComponent(view.device_id)}` },
      view.device_id) : "hub",
    h("div", { class: "message" }, event.message));
}

export function spoken(view) {
  const where = view.device_id ? `on ${view.device_id}` : "on the hub";
  const what = view.event.kind === "alarm_raised" ? "Alarm" : "Alert";
  return `${what} ${where}: ${view.event.message}`;
}

function speak(text) {
  if (!window.speechSynthesis) return;
  window.speechSynthesis.speak(new SpeechSynthesisUtterance(text));
}
