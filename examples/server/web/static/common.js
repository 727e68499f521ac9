// Shared by the desktop and phone pages: calls to the JSON API with its
// plain-language errors.
"use strict";

// ApiError carries the API's error body: code (machine) and message (plain language).
class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || "Something went wrong. Try again.");
    this.status = status;
    this.code = e.code || "http_" + status;
  }
}

// api calls path under /api with JSON in and out. headers are added to the request.
async function api(method, path, body, headers) {
  const h = Object.assign({}, headers || {});
  const init = { method, headers: h, credentials: "same-origin" };
  if (body !== undefined) {
    h["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch("/api" + path, init);
  } catch (e) {
    throw new ApiError(0, { error: { code: "network", message: "No connection to the server. Check the network and try again." } });
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// idempotencyKey makes the key of one photo's uploads: 128 random bits, hex.
// A page makes it once per photo and sends it with every attempt, so an
// attempt whose reply was lost and is sent again returns the image already
// made, never a second.
function idempotencyKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// upload sends a body with XMLHttpRequest so progress can be shown.
// onProgress gets a fraction 0..1. It resolves to the parsed JSON reply and
// rejects with an ApiError: status 0 when the network failed, the request
// timed out or was aborted; else the server's, with its Retry-After header
// (if any) as retryAfter. opts, all optional: timeout in milliseconds; lost,
// the message for status 0; started(xhr), called before sending, so the
// caller can abort it.
function upload(path, blob, headers, onProgress, opts) {
  const o = opts || {};
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api" + path);
    if (o.timeout) xhr.timeout = o.timeout;
    for (const [k, v] of Object.entries(headers || {})) xhr.setRequestHeader(k, v);
    if (blob.type) xhr.setRequestHeader("Content-Type", blob.type);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
      if (xhr.status >= 200 && xhr.status < 300) { onProgress(1); resolve(data); return; }
      const err = new ApiError(xhr.status, data);
      err.retryAfter = xhr.getResponseHeader("Retry-After") || "";
      reject(err);
    };
    xhr.onerror = xhr.ontimeout = xhr.onabort = () =>
      reject(new ApiError(0, { error: { code: "network", message: o.lost || "The upload was interrupted. Check the network and retry." } }));
    if (o.started) o.started(xhr);
    xhr.send(blob);
  });
}

function showError(el, err) {
  if (!err) { el.hidden = true; el.textContent = ""; return; }
  el.textContent = err.message || String(err);
  el.hidden = false;
}
