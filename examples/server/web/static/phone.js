// The phone page: claims the handoff code from the URL fragment, shows whose
// record the photos go to, then takes photos, shrinks them in the browser and
// sends them one at a time through a queue that survives the network.
//
// Never loses a photo: a failed send (no network, the server busy or
// restarting: 502/503/504, 429, 408, an upload still in progress) waits and
// is sent again by itself, with exponential backoff and jitter, honouring
// Retry-After, and at once when the phone comes back online or the page
// becomes visible again (a phone that slept). Never doubles one: each photo
// gets its own idempotency key when it is taken, sent in the Idempotency-Key
// header with every attempt, so an attempt whose reply was lost and is sent
// again returns the image already made.
//
// Nothing outlives the page: the phone token, the patient check and the
// photos live in this closure and the page's DOM only (no cookies, storage,
// IndexedDB or camera roll). A photo's bytes are dropped once it is sent;
// what stays is a small thumbnail drawn on a canvas, shown with the count
// until the session ends. Leaving the page with photos unsent asks first.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const MAX_SIDE = 2048; // the server normalises to this size too
  const SHRINK_OVER_BYTES = 1.5 * 1024 * 1024;
  const THUMB_SIDE = 320; // canvas pixels of a thumbnail's long side
  const BACKOFF_BASE_MS = 1000, BACKOFF_MAX_MS = 30000;
  const UPLOAD_TIMEOUT_MS = 90000;
  // A heartbeat tells the server the phone is still here (the desktop shows
  // it gone once the server has not heard from it for its lapse window, 10 s
  // by default) and learns whether the session still runs.
  const HEARTBEAT_MS = 3000;
  let token = "";
  let ended = false;
  let n = 0;
  const items = []; // every photo of this visit, in the order taken
  let busy = false;
  let timer = 0;
  let inflight = null; // the XMLHttpRequest sending now
  let checkTimer = 0;

  const status = (t) => { $("status").textContent = t; };
  const auth = () => ({ Authorization: "Bearer " + token });
  const unsent = () => items.filter((i) => i.state === "queued" || i.state === "sending" || i.state === "waiting");
  const count = (state) => items.filter((i) => i.state === state).length;

  async function claim() {
    const code = new URLSearchParams(location.hash.slice(1)).get("code");
    // The single-use code must not stay in the address bar or history.
    history.replaceState(null, "", location.pathname);
    if (!code) {
      finish("No QR code", "Open this page by scanning the QR code on the desktop.");
      return;
    }
    try {
      const res = await api("POST", "/phone/claim", { code: code, device: navigator.userAgent.slice(0, 200) });
      token = res.token;
      status("Connected. Take photos of the patient; they appear on the desktop.");
      $("capture").hidden = false;
      loadHintOptions();
      loadPatientCheck();
      scheduleCheck();
      document.body.dataset.claimed = "true";
    } catch (e) {
      finish("Could not connect", e.message);
    }
  }

  // loadPatientCheck shows the few details the GP compares with the
  // desktop's banner (initials, age, sex). They are kept in the DOM only.
  async function loadPatientCheck() {
    try {
      const p = await api("GET", "/phone/patient", undefined, auth());
      if (!p || ended) return;
      $("check-initials").textContent = p.initials || "";
      $("check-age").textContent = p.age || "";
      $("check-sex").textContent = p.sex || "";
      $("check").hidden = !(p.initials || p.age || p.sex);
      document.body.dataset.check = "shown";
    } catch (e) {
      if (sessionGone(e)) { sessionEnded(); return; }
      document.body.dataset.check = "unavailable";
    }
  }

  // makeThumb draws a small upright copy of the photo, keeping its aspect,
  // or a placeholder when the browser cannot decode it (HEIC outside Safari).
  async function makeThumb(item) {
    const frame = item.frame;
    try {
      const bmp = await createImageBitmap(item.file, { imageOrientation: "from-image" });
      try {
        const scale = Math.min(1, THUMB_SIDE / Math.max(bmp.width, bmp.height));
        const c = document.createElement("canvas");
        c.width = Math.max(1, Math.round(bmp.width * scale));
        c.height = Math.max(1, Math.round(bmp.height * scale));
        c.getContext("2d").drawImage(bmp, 0, 0, c.width, c.height);
        c.setAttribute("role", "img");
        c.setAttribute("aria-label", "Photo " + item.n + " preview");
        c.dataset.aspect = (bmp.width / bmp.height).toFixed(3);
        frame.replaceChildren(c);
      } finally { bmp.close(); }
    } catch (e) {
      const s = document.createElement("span");
      s.className = "nopreview";
      s.textContent = "No preview";
      frame.replaceChildren(s);
    }
  }

  // shrink downscales large photos with a canvas (applying the EXIF
  // orientation, dropping all metadata). Small ones, and ones the browser
  // cannot decode, go as they are: the server normalises every photo anyway.
  async function shrink(file) {
    let bmp;
    try { bmp = await createImageBitmap(file, { imageOrientation: "from-image" }); } catch (e) { return file; }
    try {
      const scale = Math.min(1, MAX_SIDE / Math.max(bmp.width, bmp.height));
      if (scale === 1 && file.size <= SHRINK_OVER_BYTES) return file;
      const c = document.createElement("canvas");
      c.width = Math.round(bmp.width * scale);
      c.height = Math.round(bmp.height * scale);
      c.getContext("2d").drawImage(bmp, 0, 0, c.width, c.height);
      const blob = await new Promise((r) => c.toBlob(r, "image/jpeg", 0.88));
      return blob || file;
    } finally { bmp.close(); }
  }

  function add(file) {
    const i = ++n;
    const li = document.createElement("li");
    const frame = document.createElement("div");
    frame.className = "frame";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = "Photo " + i;
    const bar = document.createElement("progress");
    bar.max = 1; bar.value = 0;
    bar.setAttribute("aria-label", "Upload progress for photo " + i);
    const msg = document.createElement("span");
    msg.className = "msg";
    li.append(frame, name, bar, msg);
    $("uploads").appendChild(li);
    const item = { n: i, key: idempotencyKey(), file, blob: null, hint: hintQuery(), li, frame, bar, msg, attempts: 0, due: 0, why: "" };
    setState(item, "queued", "Waiting to send…");
    items.push(item);
    makeThumb(item);
    render();
    pump();
  }

  function setState(item, state, text) {
    item.state = state;
    item.li.dataset.state = state;
    item.msg.textContent = text;
  }

  // pump sends due photos one at a time, in the order taken.
  async function pump() {
    if (busy || !token || ended) return;
    busy = true;
    clearTimeout(timer);
    try {
      for (;;) {
        if (!token || ended) break;
        const now = Date.now();
        const next = items.find((i) => i.state === "queued" || (i.state === "waiting" && i.due <= now && navigator.onLine !== false));
        if (!next) break;
        await send(next);
      }
    } finally {
      busy = false;
    }
    schedule();
    render();
  }

  // schedule wakes the queue when the earliest waiting photo is due.
  function schedule() {
    clearTimeout(timer);
    const waiting = items.filter((i) => i.state === "waiting");
    if (!waiting.length || ended || navigator.onLine === false) return;
    const due = Math.min(...waiting.map((i) => i.due));
    timer = setTimeout(pump, Math.max(0, due - Date.now()));
  }

  // wake retries every waiting photo now: the network came back or the
  // phone woke up.
  function wake() {
    if (ended || !token) return;
    for (const i of items) if (i.state === "waiting") i.due = 0;
    pump();
  }

  // backoff is the wait before attempt number a (1-based) of a photo:
  // exponential with "equal jitter" (half fixed, half random), never less
  // than the server's Retry-After.
  function backoff(a, retryAfterMs) {
    const d = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(a - 1, 10));
    const jittered = d / 2 + Math.random() * d / 2;
    return Math.max(jittered, retryAfterMs || 0);
  }

  // loadHintOptions fills the optional body-site and side pickers. They are
  // codes only; a failure just leaves them at "Not stated".
  async function loadHintOptions() {
    try {
      const [sites, sets] = await Promise.all([
        fetch("/bodysites").then((r) => r.json()),
        fetch("/valuesets.json").then((r) => r.json()),
      ]);
      const groups = {};
      for (const s of sites) {
        let g = groups[s.region];
        if (!g) {
          g = groups[s.region] = document.createElement("optgroup");
          g.label = s.region;
          $("hint-site").appendChild(g);
        }
        g.appendChild(new Option(s.name, s.code));
      }
      for (const l of sets.lateralities || []) $("hint-side").appendChild(new Option(l.name, l.code));
    } catch (e) { /* optional */ }
  }

  // hintQuery is the metadata chosen when a photo was taken.
  function hintQuery() {
    const q = new URLSearchParams();
    if ($("hint-site").value) q.set("bodySite", $("hint-site").value);
    if ($("hint-side").value) q.set("laterality", $("hint-side").value);
    const s = q.toString();
    return s ? "?" + s : "";
  }

  // retryable says whether sending the same photo again later can succeed.
  function retryable(e) {
    return e.status === 0 || e.status === 408 || e.status === 429 || e.status === 502 || e.status === 503 ||
      e.status === 504 || e.status === 500 || (e.status === 409 && e.code === "upload_in_progress");
  }
  const sessionGone = (e) => e.status === 401 || e.status === 403 || e.status === 410;

  async function send(item) {
    const { bar } = item;
    setState(item, "sending", "Preparing…");
    render();
    try {
      const blob = item.blob || (item.blob = await shrink(item.file));
      item.attempts++;
      setState(item, "sending", item.attempts > 1 ? "Sending again…" : "Sending…");
      await post("/phone/images" + item.hint, blob, item.key, (p) => { bar.value = p; });
      setState(item, "sent", "Sent");
      item.msg.className = "msg ok";
      item.file = item.blob = null; // the bytes leave the page's memory
    } catch (e) {
      if (sessionGone(e)) { sessionEnded(e.message); return; }
      if (retryable(e)) {
        item.why = e.status === 0 ? "network" : "server";
        item.due = Date.now() + backoff(item.attempts, e.retryAfterMs);
        setState(item, "waiting", item.why === "network" ? "Waiting for network…" : "Server busy; will retry…");
        bar.value = 0;
        return;
      }
      const btn = document.createElement("button");
      btn.type = "button";
      if (e.status === 413 || e.status === 415 || e.status === 422) {
        // Sending the same file again cannot help: let the user dismiss it.
        setState(item, "failed", e.message);
        item.refused = true;
        item.msg.className = "msg bad";
        btn.textContent = "Remove";
        btn.setAttribute("aria-label", "Remove photo " + item.n);
        btn.addEventListener("click", () => { drop(item); });
      } else {
        setState(item, "failed", e.message);
        item.msg.className = "msg bad";
        btn.textContent = "Retry";
        btn.setAttribute("aria-label", "Retry photo " + item.n);
        btn.addEventListener("click", () => { btn.remove(); item.msg.className = "msg"; setState(item, "queued", "Waiting to send…"); pump(); });
      }
      item.li.appendChild(btn);
    } finally {
      render();
    }
  }

  function drop(item) {
    item.file = item.blob = null;
    item.li.remove();
    items.splice(items.indexOf(item), 1);
    render();
  }

  // post sends one photo with its idempotency key (common.js's upload). It
  // rejects with an ApiError (status 0 for no network), carrying the
  // server's Retry-After in milliseconds when given.
  function post(path, blob, key, onProgress) {
    return upload(path, blob, Object.assign({ "Idempotency-Key": '"' + key + '"' }, auth()), onProgress, {
      timeout: UPLOAD_TIMEOUT_MS,
      lost: "No network. The photo will be sent when the connection is back.",
      started: (xhr) => { inflight = xhr; },
    }).catch((e) => {
      e.retryAfterMs = retryAfter(e.retryAfter);
      throw e;
    }).finally(() => { inflight = null; });
  }

  // retryAfter reads a Retry-After header (seconds or an HTTP date) as
  // milliseconds, capped at five minutes.
  function retryAfter(v) {
    if (!v) return 0;
    let ms = /^\d+$/.test(v.trim()) ? Number(v) * 1000 : Date.parse(v) - Date.now();
    if (!isFinite(ms) || ms < 0) ms = 0;
    return Math.min(ms, 300000);
  }

  // render shows the queue's state in words and on the body for tests.
  function render() {
    const sent = count("sent"), waiting = count("waiting"), left = unsent().length;
    const offline = navigator.onLine === false;
    const q = $("queue");
    let text = "", state = "idle";
    if (waiting > 0 && (offline || items.some((i) => i.state === "waiting" && i.why === "network"))) {
      text = waiting + " waiting for network"; state = "waiting";
    } else if (waiting > 0) {
      text = waiting + " waiting to retry (server busy)"; state = "waiting";
    } else if (left > 0) {
      text = "Sending: " + left + " to go"; state = "sending";
    } else if (sent > 0) {
      text = sent === 1 ? "1 photo sent to the desktop" : sent + " photos sent to the desktop"; state = "done";
    }
    if ((state === "waiting" || state === "sending") && sent > 0) text += " · " + sent + " sent";
    if (q.textContent !== text) q.textContent = text;
    q.dataset.state = state;
    document.body.dataset.sent = String(sent);
    document.body.dataset.waiting = String(waiting);
    document.body.dataset.unsent = String(left);
  }

  // scheduleCheck sends a heartbeat every few seconds, also while the page
  // is hidden (a browser may slow hidden timers; the camera case is covered
  // by heartbeat(true) before it opens), so the desktop knows the phone is
  // here and the phone learns when the GP finishes on the desktop.
  function scheduleCheck() {
    clearTimeout(checkTimer);
    if (ended || !token) return;
    checkTimer = setTimeout(checkSession, HEARTBEAT_MS);
  }

  async function checkSession() {
    if (ended || !token) return;
    try {
      await heartbeat(false);
    } catch (e) {
      if (sessionGone(e)) { sessionEnded(); return; }
    }
    scheduleCheck();
  }

  // heartbeat tells the server the phone is here; capturing says the camera
  // is about to open (the phone may be silent for a while: the server then
  // waits longer before calling it gone).
  function heartbeat(capturing) {
    return api("POST", "/phone/heartbeat", capturing ? { capturing: true } : undefined, auth());
  }

  // sayDone tells the server the phone has finished, so the desktop shows it
  // gone at once. keepalive lets it outlive the page.
  function sayDone() {
    if (!token) return;
    fetch("/api/phone/done", { method: "POST", headers: auth(), keepalive: true, credentials: "same-origin" }).catch(() => {});
  }

  // sessionEnded ends the page when the server no longer accepts this
  // phone (the GP finished, disconnected the phone, or the session expired),
  // saying how many photos did not make it.
  function sessionEnded(reason) {
    const left = unsent().length + items.filter((i) => i.state === "failed" && !i.refused).length;
    const sent = count("sent");
    const why = reason || "The session on the desktop has ended.";
    const sentText = sent + (sent === 1 ? " photo was" : " photos were") + " sent to the desktop.";
    if (left > 0) {
      finish(left + (left === 1 ? " photo was" : " photos were") + " not sent",
        why + " " + sentText + " " + (left === 1 ? "One photo taken here was" : left + " photos taken here were") +
        " not sent: take " + (left === 1 ? "it" : "them") + " again after the GP shows a new QR code.", left);
    } else {
      finish("Session ended", why + " " + sentText);
    }
  }

  function finish(title, msg, lost) {
    ended = true;
    token = "";
    clearTimeout(timer);
    clearTimeout(checkTimer);
    if (inflight) { const x = inflight; inflight = null; x.onabort = null; x.abort(); }
    // Drop the photos and the patient check from the page's memory too.
    for (const i of items) i.file = i.blob = null;
    items.length = 0;
    $("uploads").replaceChildren();
    $("check-initials").textContent = $("check-age").textContent = $("check-sex").textContent = "";
    $("check").hidden = true;
    $("capture").hidden = true;
    $("end").hidden = false;
    $("end-title").textContent = title;
    $("end-msg").textContent = msg;
    if (lost) $("end").dataset.lost = String(lost);
    status("");
    document.body.dataset.ended = "true";
  }

  $("camera").addEventListener("change", (e) => {
    for (const f of e.target.files) add(f);
    e.target.value = "";
  });
  document.querySelector('label[for="camera"]').addEventListener("click", () => {
    if (token && !ended) heartbeat(true).catch(() => {});
  });
  $("done").addEventListener("click", () => {
    const left = unsent().length + count("failed");
    if (left > 0 && !confirm(left + (left === 1 ? " photo has" : " photos have") + " not been sent yet and will be lost. Finish anyway?")) return;
    sayDone();
    const sent = count("sent");
    finish("Finished", sent + (sent === 1 ? " photo was" : " photos were") + " sent to the desktop." +
      (left > 0 ? " " + left + " not sent." : ""), left);
  });
  window.addEventListener("online", () => { render(); wake(); });
  window.addEventListener("offline", () => {
    // A send in flight will not finish: give up on it now and wait.
    if (inflight) inflight.abort();
    render();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") { wake(); checkSession(); }
  });
  window.addEventListener("pageshow", (e) => { if (e.persisted) wake(); });
  window.addEventListener("beforeunload", (e) => {
    if (!ended && unsent().length > 0) { e.preventDefault(); e.returnValue = ""; }
  });
  window.addEventListener("pagehide", (e) => {
    if (e.persisted) return;
    if (!ended) sayDone();
    token = "";
  });

  claim();
})();
