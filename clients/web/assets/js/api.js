// The HTTP side of the page: same-origin fetch with the session cookie, the CSRF double submit (contract 3.9)
// and problem+json errors (1.7) raised as ApiError.

let csrfFallback = null; // csrf_token of the last login body, for when the CSRF-TOKEN cookie is unreadable
let onUnauthorized = () => {};

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.message || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code || "";
    this.problem = problem || {};
  }

  /** One line for a person: the service's message, or what the status means. */
  get friendly() {
    if (this.status === 0) return "Threadline cannot be reached. Check your connection and try again.";
    if (this.status === 429) {
      const wait = this.problem.details?.retry_after_seconds;
      return `Slow down a little${wait ? `: try again in ${wait} s` : ""}.`;
    }
    if (this.status >= 500) return "Something went wrong on the server. Try again in a moment.";
    return this.problem.message ? capitalise(this.problem.message) + "." : `Request failed (HTTP ${this.status}).`;
  }
}

function capitalise(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function setCsrfFallback(token) {
  csrfFallback = token || null;
}

/** Called with the ApiError of any 401 outside the login routes (the session is gone). */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === "CSRF-TOKEN") return decodeURIComponent(rest.join("="));
  }
  return csrfFallback;
}

export async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") {
    const token = csrfToken();
    if (token) headers["X-CSRF-TOKEN"] = token;
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, { message: "network error" });
  }
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && !path.startsWith("/api/auth/")) onUnauthorized(error);
    throw error;
  }
  return data;
}

export const api = {
  get: (path) => request("GET", path),
  post: (path, body) => request("POST", path, body),
  delete: (path) => request("DELETE", path),
};
