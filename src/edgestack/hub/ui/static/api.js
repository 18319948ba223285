// Calls to the hub's API with the login cookie; a refusal becomes an ApiError with its reason.

export const API = "/api/v1";
// A listing's rows per request (the most the hub gives), and the requests one listing may
// take: a page that shows a whole listing stops there rather than hang the browser.
export const PAGE = 1000;
export const MAX_PAGES = 20;

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// Every page listens: a 401 anywhere means the login is gone and the login form is due.
export const UNAUTHORIZED = "edgestack:unauthorized";

export async function api(path, { method = "GET", body, params } = {}) {
  return (await call(path, { method, body, params })).data;
}

// The first `limit` rows of a listing in the order `params` ask, and whether it has more.
export async function newest(path, limit, params = {}) {
  const { data, next } = await call(path, { params: { ...params, limit } });
  return { rows: data, more: next !== null };
}

// A whole listing, page after page where the hub's `Link: <...>; rel="next"` says the next
// one starts, at most MAX_PAGES pages: `complete` is false where the hub holds more rows.
export async function listing(path, params = {}) {
  const rows = [];
  let page = await call(path, { params: { ...params, limit: PAGE } });
  rows.push(...page.data);
  for (let pages = 1; page.next !== null && pages < MAX_PAGES; pages += 1) {
    page = await call(page.next, { absolute: true });
    rows.push(...page.data);
  }
  return { rows, complete: page.next === null };
}

async function call(path, { method = "GET", body, params, absolute = false } = {}) {
  const query = params ? `?${new URLSearchParams(params)}` : "";
  const response = await fetch(absolute ? path : `${API}${path}${query}`, {
    method,
    credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return { data: null, next: null };
  const text = await response.text();
  if (!response.ok) {
    if (response.status === 401 && path !== "/login") {
      window.dispatchEvent(new Event(UNAUTHORIZED));
    }
    throw new ApiError(response.status, reason(text) || response.statusText);
  }
  return { data: text ? JSON.parse(text) : null, next: nextPage(response.headers.get("Link")) };
}

// The address of the next page in a Link header (RFC 8288), or null on the last page.
function nextPage(link) {
  const next = link?.match(/<([^>]*)>\s*;\s*rel="?next"?/);
  return next ? next[1] : null;
}

// The hub words every refusal as {"detail": ...}; a proxy in between may answer otherwise.
function reason(text) {
  try {
    return JSON.parse(text).detail;
  } catch {
    return text.slice(0, 200);
  }
}
