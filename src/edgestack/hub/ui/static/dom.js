// Building the page from data without ever parsing data as HTML.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
  return node;
}

export function table(headings, rows) {
  return h("table", {},
    h("thead", {}, h("tr", {}, headings.map((name) => h("th", {}, name)))),
    h("tbody", {}, rows));
}

export function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

export function time(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "";
}

export function number(value, digits = 2) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

export function bundle(ref) {
  return ref ? `${ref.name} v${ref.version}` : "none";
}

// `step` that never runs twice at once: a call while it runs makes it run once more after,
// so two refreshes (a timer's and an event's) cannot both add the same new rows.
export function serialised(step) {
  let running = null;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await step();
      } while (again);
    })();
    try {
      await running;
    } finally {
      running = null;
    }
  };
  return run;
}

// Runs `step` now and every `ms` until the returned stop is called; a failing step is shown
// by its page, not retried faster.
export function every(ms, step) {
  let timer = null;
  let stopped = false;
  const run = async () => {
    try {
      await step();
    } catch (error) {
      console.warn(error);
    } finally {
      if (!stopped) timer = setTimeout(run, ms);
    }
  };
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

// A line saying how the last action went, for screen readers too.
export function status() {
  return h("p", { class: "status", role: "status" });
}

export function say(node, text, ok = true) {
  node.textContent = text;
  node.classList.toggle("error", !ok);
}

// What a page says where it shows fewer rows than the hub holds: hidden where it shows all.
export function partial(more, text) {
  return h("p", { class: "muted partial", role: "note", hidden: !more }, more ? text : "");
}
