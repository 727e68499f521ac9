// The GP's desktop page: launch, patient banner, QR handoff with presence,
// uploads, live thumbnails over the event stream, per-photo details, commit.
//
// One tab, one patient. The launch answers with a credential for this
// session alone; the page keeps it in this tab's sessionStorage (it survives
// a reload, no other tab sees it, it is never in a URL) and sends it as
// "Authorization: Bearer" on every call: API calls, thumbnails (fetched as
// blobs) and the event stream (read with fetch, since EventSource cannot send
// a header). The browser-wide cookie the launch also sets is never what this
// page relies on, so a launch for another patient in another tab of the same
// browser cannot change what this tab shows or commits. A bearer header is
// not sent by the browser on its own, so it needs no CSRF token. A tab
// without a credential (an address copied into a new tab) says to open the
// widget again from Evolution; a tab whose session ended or changed stops
// and says so.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const KEY_CRED = "ci_credential", KEY_SESSION = "ci_session";
  const state = {
    credential: sessionStorage.getItem(KEY_CRED) || "",
    sessionId: sessionStorage.getItem(KEY_SESSION) || "",
    images: new Map(), // id -> image view from the API
    cards: new Map(), // id -> card element
    lateralities: [], views: [],
    stream: null, ended: false, refreshing: null, again: false,
  };
  const errorBox = $("error");
  const auth = () => ({ Authorization: "Bearer " + state.credential });
  const call = (m, p, b) => api(m, p, b, auth());
  const NOT_LAUNCHED = "This tab was not opened from Medtech Evolution, or its session has ended. Open the widget again from Medtech Evolution for the patient on screen.";

  // fragmentParams reads name=value pairs from the URL fragment. Unlike
  // URLSearchParams it keeps a literal "+" (Evolution may insert the
  // base64 launch values unencoded), and it decodes %-escapes.
  function fragmentParams(hash) {
    const out = new Map();
    for (const part of hash.replace(/^#/, "").split("&")) {
      const i = part.indexOf("=");
      if (i <= 0) continue;
      try { out.set(part.slice(0, i), decodeURIComponent(part.slice(i + 1))); } catch (e) { /* malformed: ignored */ }
    }
    return out;
  }

  function launchBody(hash) {
    const frag = fragmentParams(hash);
    if (frag.get("context") && frag.get("signature")) return { context: frag.get("context"), signature: frag.get("signature") };
    if (frag.get("token")) return { token: frag.get("token") };
    return null;
  }

  async function launch() {
    const body = launchBody(location.hash);
    // The launch pair or token must not stay in the address bar or history.
    if (location.hash) history.replaceState(null, "", location.pathname);
    if (body) {
      // A new launch in this tab replaces whatever session it had.
      sessionStorage.removeItem(KEY_CRED);
      sessionStorage.removeItem(KEY_SESSION);
      const res = await api("POST", "/launch", body);
      state.credential = res.credential;
      state.sessionId = res.session.id;
      sessionStorage.setItem(KEY_CRED, state.credential);
      sessionStorage.setItem(KEY_SESSION, state.sessionId);
    }
    if (!state.credential) throw { message: NOT_LAUNCHED };
    return call("GET", "/session");
  }

  // Evolution may open the next patient's launch in this same tab. Only the
  // fragment differs, so the browser would not reload: reload, so that the
  // page starts over for the new launch instead of showing the old patient.
  window.addEventListener("hashchange", () => { if (launchBody(location.hash)) location.reload(); });

  async function start() {
    try {
      const [sess, vs] = await Promise.all([launch(), fetch("/valuesets.json").then((r) => r.json())]);
      state.lateralities = vs.lateralities || [];
      state.views = vs.views || [];
      if (!ownSession(sess)) return;
      document.body.dataset.session = sess.id;
      $("main").hidden = false;
      applySession(sess);
      loadPatient();
      newQR();
      presence();
      connectEvents();
    } catch (e) {
      $("patient-detail").textContent = "";
      if (e.status === 401 || e.status === 410) e = { message: NOT_LAUNCHED };
      document.body.dataset.events = "closed";
      showError(errorBox, e);
    }
  }

  // ownSession stops the page if a reply is for a session other than this
  // tab's: it must never show one patient's photos under another's banner.
  function ownSession(sess) {
    if (sess && sess.id === state.sessionId) return true;
    end("This tab's session has changed. Close it and open the widget again from Medtech Evolution for the patient on screen.");
    return false;
  }

  async function loadPatient() {
    try {
      const p = await call("GET", "/patient");
      $("patient-name").textContent = p.name || "Patient";
      const bits = [];
      if (p.nhi) bits.push("NHI " + p.nhi);
      if (p.birthDate) bits.push("born " + p.birthDate);
      if (p.gender) bits.push(p.gender);
      $("patient-detail").textContent = bits.join(" · ");
    } catch (e) {
      $("patient-detail").textContent = "Could not read the patient from Medtech: " + e.message;
    }
  }

  // --- phone handoff -------------------------------------------------------
  async function newQR() {
    try {
      const h = await call("POST", "/handoff");
      const base = document.body.dataset.publicUrl || location.origin;
      const url = base + "/m#code=" + encodeURIComponent(h.code);
      const link = $("phone-link");
      link.href = url;
      link.dataset.phoneUrl = url;
      const res = await fetch("/qr", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ url }) });
      if (!res.ok) throw new Error("The QR code could not be drawn.");
      const qr = $("qr");
      if (qr.src.startsWith("blob:")) URL.revokeObjectURL(qr.src);
      qr.src = URL.createObjectURL(await res.blob());
      qr.dataset.ready = "true";
    } catch (e) { showError(errorBox, e); }
  }

  async function presence() {
    try {
      const p = await call("GET", "/presence");
      const el = $("presence");
      el.dataset.connected = String(!!p.phone);
      el.textContent = p.phone ? "Phone connected" : "Phone not connected";
    } catch (e) { /* presence is a hint; the event stream will retry */ }
  }

  $("new-qr").addEventListener("click", newQR);
  $("disconnect").addEventListener("click", async () => {
    try { await call("DELETE", "/handoff"); await presence(); newQR(); } catch (e) { showError(errorBox, e); }
  });

  // --- events --------------------------------------------------------------
  const TYPES = ["image.added", "image.updated", "image.removed", "image.committing", "image.committed", "image.failed",
    "phone.connected", "phone.disconnected", "session.expired", "resync"];

  // connectEvents reads the session's Server-Sent Events with fetch, which,
  // unlike EventSource, can send this tab's credential as a header. It
  // reconnects after the server's retry delay, resuming from the last event
  // id, until the session ends.
  async function connectEvents() {
    let lastId = "", retry = 2000;
    while (!state.ended) {
      const ctrl = new AbortController();
      state.stream = ctrl;
      try {
        const headers = Object.assign({ Accept: "text/event-stream" }, auth());
        if (lastId) headers["Last-Event-ID"] = lastId;
        const res = await fetch("/api/events", { headers, credentials: "omit", cache: "no-store", signal: ctrl.signal });
        if (res.status === 401 || res.status === 410 || res.status === 404) { end(NOT_LAUNCHED); return; }
        if (!res.ok || !res.body) throw new Error("event stream " + res.status);
        document.body.dataset.events = "open";
        document.body.dataset.opens = String(+(document.body.dataset.opens || 0) + 1);
        refresh(); // catch up with anything missed while disconnected
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n?/g, "\n");
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            let type = "", id = "";
            for (const line of block.split("\n")) {
              const i = line.indexOf(":");
              if (i === 0) continue; // a comment (heartbeat)
              const field = i < 0 ? line : line.slice(0, i);
              const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
              if (field === "event") type = val;
              else if (field === "id") id = val;
              else if (field === "retry" && /^\d+$/.test(val)) retry = +val;
            }
            if (id) lastId = id;
            if (type && TYPES.includes(type)) onEvent(type);
          }
        }
      } catch (e) { /* dropped: reconnect below */ }
      if (state.ended) return;
      document.body.dataset.events = "reconnecting";
      await new Promise((r) => setTimeout(r, Math.max(retry, 1000)));
    }
  }
  window.addEventListener("pagehide", () => { if (state.stream) state.stream.abort(); });

  function onEvent(type) {
    if (type === "phone.connected" || type === "phone.disconnected") { presence(); return; }
    if (type === "session.expired") { end("The capture session has ended. Open the widget again from Medtech Evolution."); return; }
    refresh();
  }

  function end(msg) {
    state.ended = true;
    if (state.stream) state.stream.abort();
    document.body.dataset.events = "closed";
    document.body.dataset.ended = "true";
    showError(errorBox, { message: msg });
    $("commit").disabled = true;
    // Nothing more may be changed from this tab.
    document.querySelectorAll("#main input, #main select, #main textarea, #main button").forEach((el) => { el.disabled = true; });
  }

  // refresh re-reads the session; calls made while one is running coalesce.
  async function refresh() {
    if (state.refreshing) { state.again = true; return state.refreshing; }
    state.refreshing = (async () => {
      do {
        state.again = false;
        try {
          const sess = await call("GET", "/session");
          if (ownSession(sess)) applySession(sess);
        } catch (e) { if (e.status === 410 || e.status === 401) end(NOT_LAUNCHED); }
      } while (state.again);
      state.refreshing = null;
    })();
    return state.refreshing;
  }

  // --- photos --------------------------------------------------------------
  function applySession(sess) {
    const seen = new Set();
    for (const img of sess.images || []) {
      seen.add(img.id);
      state.images.set(img.id, img);
      let card = state.cards.get(img.id);
      if (!card) { card = makeCard(img); state.cards.set(img.id, card); $("photos").appendChild(card); }
      updateCard(card, img);
    }
    for (const [id, card] of state.cards) {
      if (!seen.has(id)) {
        const thumb = card.querySelector(".thumb");
        if (thumb.src.startsWith("blob:")) URL.revokeObjectURL(thumb.src);
        card.remove(); state.cards.delete(id); state.images.delete(id);
      }
    }
    $("empty").hidden = state.cards.size > 0;
    document.body.dataset.photos = String(state.cards.size);
    const pending = [...state.images.values()].filter((i) => i.state !== "committed").length;
    $("commit").disabled = pending === 0 || state.ended;
  }

  const STATE_TEXT = { uploaded: "Ready to send", committing: "Sending to Medtech…", committed: "In the patient's record", failed: "Not sent" };
  let counter = 0;

  function makeCard(img) {
    const card = $("photo-tpl").content.firstElementChild.cloneNode(true);
    const n = ++counter;
    card.dataset.id = img.id;
    card.dataset.width = img.width;
    card.dataset.height = img.height;
    const thumb = card.querySelector(".thumb");
    thumb.alt = "Photo " + n + (img.source === "phone" ? " from the phone" : "");
    thumb.addEventListener("load", () => { card.dataset.loaded = "true"; });
    loadThumb(thumb, img.id);
    // Give every control a unique id so its label is explicit.
    card.querySelectorAll("input, select, textarea").forEach((el) => { el.id = el.className.split(" ")[0] + "-" + img.id; });
    const lat = card.querySelector(".laterality");
    for (const l of state.lateralities) lat.add(new Option(l.name, l.code));
    const view = card.querySelector(".view");
    for (const v of state.views) { const o = new Option(v.name, v.code); o.title = v.hint || ""; view.add(o); }
    const q = card.querySelector(".site-q");
    const site = card.querySelector(".site");
    let timer = 0;
    q.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => searchSites(site, q.value), 150); });
    card.querySelectorAll("input, select, textarea").forEach((el) => el.addEventListener("change", () => {
      card.dataset.dirty = "true";
      card.querySelector(".saved").textContent = "Not saved yet";
    }));
    site.addEventListener("change", () => {
      const opt = site.selectedOptions[0];
      if (opt && opt.dataset.paired === "true" && !lat.value) lat.focus();
    });
    card.querySelector(".save").addEventListener("click", () => save(card));
    card.querySelector(".remove").addEventListener("click", () => remove(card));
    const c = img.clinical || {};
    if (c.bodySite) searchSites(site, "", c.bodySite);
    lat.value = c.laterality || "";
    view.value = c.view || "";
    card.querySelector(".title").value = c.title || "";
    card.querySelector(".note").value = c.note || "";
    card.querySelector(".consent").checked = !!(img.consent && img.consent.given);
    if (img.consent && img.consent.method) card.querySelector(".consent-method").value = img.consent.method;
    return card;
  }

  // loadThumb fetches the photo with this tab's credential and shows it
  // from a blob: URL (an <img src> would send the browser-wide cookie).
  async function loadThumb(thumb, id) {
    for (let attempt = 0; attempt < 3 && !state.ended; attempt++) {
      try {
        const res = await fetch("/api/images/" + encodeURIComponent(id) + "/content", { headers: auth(), credentials: "omit" });
        if (res.ok) { thumb.src = URL.createObjectURL(await res.blob()); return; }
        if (res.status === 404) return; // removed meanwhile
      } catch (e) { /* network: try again */ }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  async function searchSites(select, query, selected) {
    // Typing fires several searches; only the latest may refill the list,
    // and it keeps what is selected when its answer arrives (a stale answer
    // must not put back the site chosen before the GP picked another).
    const seq = String(+(select.dataset.seq || 0) + 1);
    select.dataset.seq = seq;
    try {
      const list = await (await fetch("/bodysites?q=" + encodeURIComponent(query))).json();
      if (select.dataset.seq !== seq) return;
      const cur = selected || select.value;
      select.length = 1;
      for (const s of list) {
        const o = new Option(s.name + (s.region ? " (" + s.region + ")" : ""), s.code);
        o.dataset.paired = String(!!s.paired);
        select.add(o);
      }
      if (cur) select.value = cur;
      select.dataset.results = String(list.length);
    } catch (e) { /* the picker keeps its last list */ }
  }

  function updateCard(card, img) {
    card.dataset.state = img.state;
    // The title exactly as Medtech will show it (the server computes it).
    card.querySelector(".record-title-text").textContent = img.title || "";
    let text = STATE_TEXT[img.state] || img.state;
    if (img.state === "failed" && img.failReason) text += ": " + (card.dataset.message || "Medtech did not accept it. Try again.");
    card.querySelector(".state").textContent = text;
    const locked = img.state === "committed" || img.state === "committing";
    card.querySelectorAll("input, select, textarea, button").forEach((el) => { el.disabled = locked; });
  }

  function details(card) {
    const v = (sel) => card.querySelector(sel).value.trim();
    const clinical = { bodySite: v(".site"), laterality: v(".laterality"), view: v(".view"), title: v(".title"), note: v(".note") };
    const given = card.querySelector(".consent").checked;
    const consent = given ? { given: true, method: v(".consent-method") } : {};
    return { clinical, consent };
  }

  async function save(card) {
    const status = card.querySelector(".saved");
    status.textContent = "Saving…";
    try {
      const img = await call("PATCH", "/images/" + encodeURIComponent(card.dataset.id), details(card));
      state.images.set(img.id, img);
      updateCard(card, img);
      delete card.dataset.dirty;
      card.dataset.saved = String(img.version);
      status.textContent = "Saved";
      return true;
    } catch (e) {
      status.textContent = e.message;
      return false;
    }
  }

  // remove asks for a second press (no modal dialog) before deleting.
  async function remove(card) {
    const btn = card.querySelector(".remove");
    if (btn.dataset.confirm !== "true") {
      btn.dataset.confirm = "true";
      btn.textContent = "Press again to remove";
      setTimeout(() => { delete btn.dataset.confirm; btn.textContent = "Remove"; }, 5000);
      return;
    }
    try { await call("DELETE", "/images/" + encodeURIComponent(card.dataset.id)); refresh(); } catch (e) { showError(errorBox, e); }
  }

  // --- uploads from this computer -----------------------------------------
  function addFiles(files) {
    for (const f of files) uploadOne(f);
  }

  // uploadOne sends one photo. Its idempotency key is made once, here, and
  // sent with every attempt (Retry included), so an attempt whose reply was
  // lost and is sent again returns the image already made, never a second.
  function uploadOne(file) {
    const keyBytes = new Uint8Array(16);
    crypto.getRandomValues(keyBytes);
    const key = Array.from(keyBytes, (x) => x.toString(16).padStart(2, "0")).join("");
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = file.name || "photo";
    const bar = document.createElement("progress");
    bar.max = 1; bar.value = 0;
    bar.setAttribute("aria-label", "Upload progress for " + name.textContent);
    const msg = document.createElement("span");
    li.append(name, bar, msg);
    $("uploads").appendChild(li);
    const go = () => {
      msg.textContent = "Uploading…"; msg.className = "";
      upload("/images", file, Object.assign({ "Idempotency-Key": '"' + key + '"' }, auth()), (p) => { bar.value = p; })
        .then(() => { msg.textContent = "Added"; msg.className = "ok"; refresh(); setTimeout(() => li.remove(), 4000); })
        .catch((e) => {
          msg.textContent = e.message; msg.className = "bad";
          const retry = document.createElement("button");
          retry.type = "button"; retry.textContent = "Retry";
          retry.addEventListener("click", () => { retry.remove(); go(); });
          li.appendChild(retry);
        });
    };
    go();
  }

  $("file").addEventListener("change", (e) => { addFiles(e.target.files); e.target.value = ""; });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); addFiles(e.dataTransfer.files); });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file").click(); } });

  // --- this computer's camera ---------------------------------------------
  let stream = null;
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) $("camera-start").hidden = false;
  $("camera-start").addEventListener("click", async () => {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1920 }, height: { ideal: 1080 } }, audio: false });
    } catch (e) {
      showError(errorBox, { message: "The camera could not be opened. Allow camera access in the browser, or choose photos instead." });
      return;
    }
    $("camera-video").srcObject = stream;
    $("camera-box").hidden = false;
    $("camera-start").hidden = true;
    $("camera-snap").focus();
  });
  $("camera-snap").addEventListener("click", () => {
    const v = $("camera-video");
    if (!v.videoWidth) return;
    const c = document.createElement("canvas");
    c.width = v.videoWidth;
    c.height = v.videoHeight;
    c.getContext("2d").drawImage(v, 0, 0);
    c.toBlob((b) => { if (b) uploadOne(new File([b], "camera-" + new Date().toISOString().slice(11, 19) + ".jpg", { type: "image/jpeg" })); }, "image/jpeg", 0.9);
  });
  function stopCamera() {
    if (stream) { stream.getTracks().forEach((tr) => tr.stop()); stream = null; }
    $("camera-video").srcObject = null;
    $("camera-box").hidden = true;
    $("camera-start").hidden = false;
  }
  $("camera-stop").addEventListener("click", stopCamera);
  window.addEventListener("pagehide", stopCamera);

  // --- commit --------------------------------------------------------------
  $("commit").addEventListener("click", async () => {
    const btn = $("commit");
    const status = $("commit-status");
    btn.disabled = true;
    showError(errorBox, null);
    // Unsaved details go first: a photo must not land without what the GP typed.
    for (const card of state.cards.values()) {
      if (card.dataset.dirty === "true" && !(await save(card))) {
        status.textContent = "Check the details of the highlighted photo first.";
        card.querySelector(".saved").focus();
        btn.disabled = false;
        return;
      }
    }
    const ids = [...state.images.values()].filter((i) => i.state !== "committed").map((i) => i.id);
    for (const id of ids) { const c = state.cards.get(id); if (c) updateCard(c, Object.assign({}, state.images.get(id), { state: "committing" })); }
    status.textContent = "Sending " + ids.length + " photo" + (ids.length === 1 ? "" : "s") + " to Medtech…";
    try {
      const res = await call("POST", "/commit", {});
      let ok = 0;
      for (const o of res.images || []) {
        const card = state.cards.get(o.image);
        if (!card) continue;
        if (o.state === "committed") ok++;
        card.dataset.message = o.message || "";
      }
      const failed = (res.images || []).length - ok;
      status.textContent = failed === 0 ? "All " + ok + " sent to the patient's record." : ok + " sent, " + failed + " not sent: see each photo, then try again.";
      document.body.dataset.committed = String(ok);
    } catch (e) {
      status.textContent = "";
      showError(errorBox, e);
    }
    await refresh();
  });

  start();
})();
