// Calls to the hub's API with the login cookie; a refusal becomes an ApiError with its reason.

export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// Every page listens: a 401 anywhere means the login is gone and the login form is due.
export const UNAUTHORIZED = "edgestack:unauthorized";

export async function api(path, { method = "GET", body, params } = {}) {
  const query = params ? `?${new URLSearchParams(params)}` : "";
  const response = await fetch(`${API}${path}${query}`, {
    method,
    credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const text = await response.text();
  if (!response.ok) {
    if (response.status === 401 && path !== "/login") {
      window.dispatchEvent(new Event(UNAUTHORIZED));
    }
    throw new ApiError(response.status, reason(text) || response.statusText);
  }
  return text ? JSON.parse(text) : null;
}

// The hub words every refusal as {"detail": ...}; a proxy in between may answer otherwise.
function reason(text) {
  try {
    return JSON.parse(text).detail;
  } catch {
    return text.slice(0, 200);
  }
}
