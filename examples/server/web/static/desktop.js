// The GP's desktop page: launch, patient banner, QR handoff with presence,
// uploads, live thumbnails over the event stream, per-photo details, commit.
// The page fits one screen (1024x700 and up): a strip of small photos, the
// selected one large with its details beside it and the earlier photos of
// the patient to compare with, the Send button and its outcome underneath.
// The selected photo can be rotated, cropped and blacked out (editor.js) and
// its body site chosen on a body map (bodymap.js).
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
    lateralities: [], views: [], sites: new Map(), // code -> {name, paired}
    selected: "", historyKey: "", phoneSeen: false,
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
      const [sess, vs, sites] = await Promise.all([launch(), fetch("/valuesets.json").then((r) => r.json()),
        fetch("/bodysites").then((r) => r.json()).catch(() => [])]);
      state.lateralities = vs.lateralities || [];
      state.views = vs.views || [];
      for (const s of sites) state.sites.set(s.code, { name: s.name, paired: !!s.paired });
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

  // presence shows whether a phone is connected. A phone that was here and
  // left (it tapped Finished, the GP disconnected it, or it went quiet) is
  // shown as gone, with the time, and a fresh QR code is drawn so that a
  // phone can join again (each code is single use).
  async function presence(why) {
    try {
      const p = await call("GET", "/presence");
      const el = $("presence");
      const was = el.dataset.connected === "true";
      el.dataset.connected = String(!!p.phone);
      const at = p.since ? " at " + new Date(p.since).toLocaleTimeString("en-NZ", { hour: "numeric", minute: "2-digit" }) : "";
      if (p.phone) {
        state.phoneSeen = true;
        el.dataset.phone = "connected";
        el.textContent = "Phone connected" + at;
      } else if (state.phoneSeen || why) {
        const reason = String(p.reason || p.state || why || "");
        const finished = /finish|done|left/.test(reason);
        el.dataset.phone = finished ? "finished" : "gone";
        el.textContent = (finished ? "Phone finished" : "Phone disconnected") + at + ". Scan the new code to add more.";
        if (was) { newQR(); return true; }
      } else {
        el.dataset.phone = "none";
        el.textContent = "Phone not connected";
      }
    } catch (e) { /* presence is a hint; the event stream will retry */ }
  }

  $("new-qr").addEventListener("click", newQR);
  $("disconnect").addEventListener("click", async () => {
    try {
      await call("DELETE", "/handoff");
      // presence draws a new code when it sees the phone go; else draw it here.
      if (!(await presence("phone.disconnected"))) newQR();
    } catch (e) { showError(errorBox, e); }
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
            if (type && (TYPES.includes(type) || type.startsWith("phone."))) onEvent(type);
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
    // phone.connected, phone.disconnected and any newer phone.* event (a
    // phone that finished or went quiet): re-read the presence.
    if (type.startsWith("phone.")) { presence(type === "phone.connected" ? "" : type); return; }
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
  // One photo is selected at a time: the strip (#strip) shows every photo
  // small with its site, side and view; the selected photo's card (#photos)
  // shows it large with its details beside it. Cards of the other photos
  // stay in the page, hidden, so what the GP typed on one is kept (and
  // saved before a commit) when another is selected.
  const LEFT = "7771000", RIGHT = "24028007";
  const SIDE_SHORT = { "7771000": "L", "24028007": "R", "51440002": "Both", "399488007": "Midline" };

  function applySession(sess) {
    const seen = new Set();
    for (const img of sess.images || []) {
      seen.add(img.id);
      state.images.set(img.id, img);
      let card = state.cards.get(img.id);
      if (!card) {
        card = makeCard(img);
        state.cards.set(img.id, card);
        $("photos").appendChild(card);
        $("strip").appendChild(card._strip);
      }
      updateCard(card, img);
    }
    for (const [id, card] of state.cards) {
      if (!seen.has(id)) {
        if (card._editor) card._editor.close();
        if (card._url) URL.revokeObjectURL(card._url);
        card._strip.remove(); card.remove(); state.cards.delete(id); state.images.delete(id);
        if (state.selected === id) state.selected = "";
      }
    }
    const n = state.cards.size;
    $("empty").hidden = n > 0;
    $("history").hidden = n === 0;
    document.body.dataset.photos = String(n);
    if (!state.selected && n > 0) select(state.cards.keys().next().value, false);
    if (n === 0) closeMap();
    const pending = [...state.images.values()].filter((i) => i.state !== "committed").length;
    $("commit").disabled = pending === 0 || state.ended;
  }

  const STATE_TEXT = { uploaded: "Ready to send", committing: "Sending to Medtech…", committed: "In the patient's record", failed: "Not sent" };
  const STATE_SHORT = { uploaded: "Ready", committing: "Sending…", committed: "✓ Sent", failed: "Not sent" };
  let counter = 0;

  // select shows the photo with this id large; focus moves to its strip item
  // when asked (arrow keys).
  function select(id, focus) {
    const card = state.cards.get(id);
    if (!card) return;
    if (state.selected && state.selected !== id) {
      const old = state.cards.get(state.selected);
      if (old) { stopEdit(old); closeCompare(old); }
      closeMap();
    }
    state.selected = id;
    for (const [cid, c] of state.cards) {
      const on = cid === id;
      c.hidden = !on;
      const b = c._strip.querySelector(".pick");
      b.tabIndex = on ? 0 : -1;
      if (on) b.setAttribute("aria-current", "true"); else b.removeAttribute("aria-current");
    }
    document.body.dataset.selected = id;
    if (focus) { const b = card._strip.querySelector(".pick"); b.focus(); b.scrollIntoView({ block: "nearest", inline: "nearest" }); }
    loadHistory(card);
  }

  $("strip").addEventListener("keydown", (e) => {
    const ids = [...state.cards.keys()];
    const i = ids.indexOf(state.selected);
    let j = -1;
    if (e.key === "ArrowRight" || e.key === "ArrowDown") j = Math.min(ids.length - 1, i + 1);
    else if (e.key === "ArrowLeft" || e.key === "ArrowUp") j = Math.max(0, i - 1);
    else if (e.key === "Home") j = 0;
    else if (e.key === "End") j = ids.length - 1;
    if (j < 0) return;
    e.preventDefault();
    select(ids[j], true);
  });

  function siteName(code) { const s = state.sites.get(code); return s ? s.name : ""; }
  function viewName(code) { const v = state.views.find((x) => x.code === code); return v ? v.name : ""; }

  function makeCard(img) {
    const card = $("photo-tpl").content.firstElementChild.cloneNode(true);
    const n = ++counter;
    card.dataset.id = img.id;
    card.dataset.n = String(n);
    card.setAttribute("aria-label", "Photo " + n);
    const thumb = card.querySelector(".thumb");
    thumb.alt = "Photo " + n + (img.source === "phone" ? " from the phone" : "") + ", large";
    thumb.addEventListener("load", () => { card.dataset.loaded = "true"; });
    // The strip item that selects this card.
    const li = $("strip-tpl").content.firstElementChild.cloneNode(true);
    li.dataset.id = img.id;
    const pick = li.querySelector(".pick");
    li.querySelector(".mini").alt = "";
    pick.addEventListener("click", () => select(img.id, false));
    card._strip = li;
    // Give every control a unique id so its label is explicit.
    card.querySelectorAll("input, select, textarea").forEach((el) => { el.id = el.className.split(" ")[0] + "-" + img.id; });
    const lat = card.querySelector(".laterality");
    for (const l of state.lateralities) lat.add(new Option(l.name, l.code));
    const view = card.querySelector(".view");
    for (const v of state.views) { const o = new Option(v.name, v.code); o.title = v.hint || ""; view.add(o); }
    const dirty = () => { card.dataset.dirty = "true"; card.querySelector(".saved").textContent = "Not saved yet"; };
    card.querySelectorAll("input, select, textarea").forEach((el) => el.addEventListener("change", dirty));
    siteCombo(card, dirty);
    // Enter in a field saves the details (a new line in the note still works).
    card.querySelector(".fields").addEventListener("keydown", (e) => {
      if (e.key !== "Enter" || e.defaultPrevented || e.target.tagName === "TEXTAREA" || e.target.tagName === "BUTTON") return;
      e.preventDefault();
      save(card);
    });
    card.querySelector(".save").addEventListener("click", () => save(card));
    card.querySelector(".remove").addEventListener("click", () => remove(card));
    card.querySelector(".map-open").addEventListener("click", () => toggleMap(card));
    setupEdit(card);
    card.querySelector(".then-close").addEventListener("click", () => { closeCompare(card); });
    const c = img.clinical || {};
    setSite(card, c.bodySite || "");
    lat.value = c.laterality || "";
    view.value = c.view || "";
    card.querySelector(".title").value = c.title || "";
    card.querySelector(".note").value = c.note || "";
    card.querySelector(".consent").checked = !!(img.consent && img.consent.given);
    if (img.consent && img.consent.method) card.querySelector(".consent-method").value = img.consent.method;
    return card;
  }

  // setSite shows the chosen body site (code) in the card's combobox.
  function setSite(card, code) {
    card.querySelector(".site").value = code;
    card.querySelector(".site-q").value = code ? siteName(code) || code : "";
  }

  // siteCombo makes the body-site box one control: typing lists matching
  // sites under it (arrows move, Enter or a click picks, Escape closes).
  function siteCombo(card, dirty) {
    const q = card.querySelector(".site-q");
    const list = card.querySelector(".site-list");
    list.id = "site-list-" + card.dataset.id;
    q.setAttribute("aria-controls", list.id);
    card.querySelector(".site-label").htmlFor = q.id;
    let timer = 0, active = -1, seq = 0;
    const options = () => [...list.querySelectorAll("[role=option]")];
    const close = () => { list.hidden = true; q.setAttribute("aria-expanded", "false"); q.removeAttribute("aria-activedescendant"); active = -1; };
    const highlight = (i) => {
      const opts = options();
      if (!opts.length) return;
      active = (i + opts.length) % opts.length;
      opts.forEach((o, k) => o.setAttribute("aria-selected", String(k === active)));
      q.setAttribute("aria-activedescendant", opts[active].id);
      opts[active].scrollIntoView({ block: "nearest" });
    };
    const choose = (o) => {
      card.querySelector(".site").value = o.dataset.code;
      q.value = o.dataset.name;
      close();
      dirty();
      const lat = card.querySelector(".laterality");
      if (o.dataset.paired === "true" && !lat.value) lat.focus();
    };
    async function search() {
      const my = ++seq;
      try {
        const found = await (await fetch("/bodysites?q=" + encodeURIComponent(q.value))).json();
        if (my !== seq) return; // a newer search is on its way
        list.textContent = "";
        found.slice(0, 30).forEach((s, k) => {
          const o = document.createElement("li");
          o.setAttribute("role", "option");
          o.id = list.id + "-" + k;
          o.dataset.code = s.code;
          o.dataset.name = s.name;
          o.dataset.paired = String(!!s.paired);
          o.textContent = s.name;
          if (s.region) { const r = document.createElement("span"); r.className = "region-name"; r.textContent = " " + s.region; o.appendChild(r); }
          o.addEventListener("mousedown", (e) => e.preventDefault()); // keep focus in the box
          o.addEventListener("click", () => choose(o));
          list.appendChild(o);
        });
        list.dataset.results = String(found.length);
        if (!found.length) {
          const o = document.createElement("li");
          o.className = "none";
          o.textContent = "No body site matches. Try another word, or use the body map.";
          list.appendChild(o);
        }
        list.hidden = false;
        q.setAttribute("aria-expanded", "true");
        active = -1;
      } catch (e) { /* the list keeps its last answer */ }
    }
    q.addEventListener("input", () => {
      if (!q.value.trim()) { card.querySelector(".site").value = ""; dirty(); close(); return; }
      clearTimeout(timer); timer = setTimeout(search, 120);
    });
    q.addEventListener("keydown", (e) => {
      const open = !list.hidden;
      if (e.key === "ArrowDown") { e.preventDefault(); if (open) highlight(active + 1); else search(); }
      else if (e.key === "ArrowUp") { if (open) { e.preventDefault(); highlight(active - 1); } }
      else if (e.key === "Enter" && open && active >= 0) { e.preventDefault(); choose(options()[active]); }
      else if (e.key === "Escape" && open) { e.preventDefault(); close(); }
    });
    q.addEventListener("blur", () => {
      close();
      // What stays in the box is the site chosen, not half-typed text.
      const code = card.querySelector(".site").value;
      if (q.value !== siteName(code)) q.value = code ? siteName(code) : "";
    });
  }

  // --- body map ------------------------------------------------------------
  let mapCard = null;
  const mapFigures = BodyMap.create((site) => {
    if (!mapCard) return;
    const card = mapCard;
    card.querySelector(".site").value = site.code;
    card.querySelector(".site-q").value = state.sites.has(site.code) ? siteName(site.code) : site.name;
    if (site.side) card.querySelector(".laterality").value = site.side === "left" ? LEFT : RIGHT;
    card.dataset.dirty = "true";
    card.querySelector(".saved").textContent = "Not saved yet";
    closeMap();
    card.querySelector(".site-q").focus();
  });
  $("bodymap-figures").appendChild(mapFigures);
  function toggleMap(card) {
    if (mapCard === card && !$("bodymap").hidden) { closeMap(); card.querySelector(".map-open").focus(); return; }
    mapCard = card;
    BodyMap.mark(mapFigures, card.querySelector(".site").value, sideWord(card.querySelector(".laterality").value));
    $("bodymap").hidden = false;
    card.querySelector(".map-open").setAttribute("aria-expanded", "true");
    const first = mapFigures.querySelector(".region.chosen") || mapFigures.querySelector(".region");
    first.focus();
  }
  function closeMap() {
    $("bodymap").hidden = true;
    if (mapCard) mapCard.querySelector(".map-open").setAttribute("aria-expanded", "false");
  }
  const sideWord = (code) => (code === LEFT ? "left" : code === RIGHT ? "right" : "");
  $("bodymap-close").addEventListener("click", () => { const c = mapCard; closeMap(); if (c) c.querySelector(".map-open").focus(); });
  $("bodymap").addEventListener("keydown", (e) => { if (e.key === "Escape") { e.preventDefault(); $("bodymap-close").click(); } });

  // --- the picture: load, edit, compare ---------------------------------------
  // loadPicture fetches the photo with this tab's credential and shows it
  // from a blob: URL (an <img src> would send the browser-wide cookie), in
  // the card and in its strip item. The version in the address keeps an
  // edited photo from coming out of a cache.
  async function loadPicture(card, img) {
    const key = img.sha256 + ":" + img.width + "x" + img.height + ":" + (img.edited ? img.version : "");
    if (card._content === key) return;
    card._content = key;
    const id = img.id;
    for (let attempt = 0; attempt < 3 && !state.ended; attempt++) {
      try {
        const res = await fetch("/api/images/" + encodeURIComponent(id) + "/content?v=" + encodeURIComponent(img.version), { headers: auth(), credentials: "omit" });
        if (res.ok) {
          const blob = await res.blob();
          if (card._content !== key) return; // a newer picture is loading
          const old = card._url;
          card._url = URL.createObjectURL(blob);
          card.querySelector(".thumb").src = card._url;
          card._strip.querySelector(".mini").src = card._url;
          card.dataset.picture = String(img.version);
          if (old) setTimeout(() => URL.revokeObjectURL(old), 1000);
          return;
        }
        if (res.status === 404) return; // removed meanwhile
      } catch (e) { /* network: try again */ }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  function setupEdit(card) {
    const q = (s) => card.querySelector(s);
    const msg = q(".edit-msg");
    const refreshButtons = () => {
      const ed = card._editor;
      q(".redact-undo").disabled = !ed || ed.boxes() === 0;
      card.dataset.rotation = ed ? String(ed.rotation()) : "0";
      card.dataset.boxes = ed ? String(ed.boxes()) : "0";
    };
    q(".edit-start").addEventListener("click", () => {
      const img = state.images.get(card.dataset.id);
      if (!img || !card._url) return;
      closeCompare(card);
      q(".thumb").hidden = true;
      const area = q(".edit-area");
      area.hidden = false;
      card._editor = PhotoEditor.open(area, card._url, img.width, img.height, refreshButtons);
      q(".tools").hidden = true;
      q(".editbar").hidden = false;
      msg.textContent = "Drag the frame's corners to crop. To hide something, frame it and press Black out box.";
      card.dataset.editing = "true";
      q(".rot-l").focus();
    });
    q(".rot-l").addEventListener("click", () => { card._editor.rotate(-90).then(refreshButtons); });
    q(".rot-r").addEventListener("click", () => { card._editor.rotate(90).then(refreshButtons); });
    q(".redact-add").addEventListener("click", () => {
      if (!card._editor.blackOut()) msg.textContent = "First drag the frame's corners around the part to black out.";
      else msg.textContent = "Blacked out. Frame another part, or drag the frame to crop, then Save edit.";
      refreshButtons();
    });
    q(".redact-undo").addEventListener("click", () => { card._editor.undoBlackOut(); refreshButtons(); });
    q(".edit-cancel").addEventListener("click", () => { stopEdit(card); q(".edit-start").focus(); });
    q(".edit-save").addEventListener("click", async () => {
      const ed = card._editor;
      if (!ed.changed()) { stopEdit(card); return; }
      const body = ed.edit();
      card.dataset.lastEdit = JSON.stringify(body);
      msg.textContent = "Saving the edit…";
      q(".edit-save").disabled = true;
      try {
        const img = await call("POST", "/images/" + encodeURIComponent(card.dataset.id) + "/edit", body);
        state.images.set(img.id, img);
        stopEdit(card);
        updateCard(card, img);
        card.dataset.edits = String(+(card.dataset.edits || 0) + 1);
        q(".edit-note").textContent = "Edit saved.";
        q(".edit-start").focus();
      } catch (e) {
        msg.textContent = e.message;
        card.dataset.editError = e.code || "";
      } finally { q(".edit-save").disabled = false; }
    });
    q(".edit-reset").addEventListener("click", async () => {
      try {
        const img = await call("POST", "/images/" + encodeURIComponent(card.dataset.id) + "/reset");
        state.images.set(img.id, img);
        updateCard(card, img);
        q(".edit-note").textContent = "The photo is as it was taken.";
        q(".edit-start").focus();
      } catch (e) { q(".edit-note").textContent = e.message; }
    });
  }

  function stopEdit(card) {
    if (!card._editor) return;
    card._editor.close();
    card._editor = null;
    card.querySelector(".edit-area").hidden = true;
    card.querySelector(".thumb").hidden = false;
    card.querySelector(".tools").hidden = false;
    card.querySelector(".editbar").hidden = true;
    card.querySelector(".edit-msg").textContent = "";
    delete card.dataset.editing;
  }

  // --- earlier photos (GET /history) ------------------------------------------
  const historyThumbs = new Map(); // history item id -> blob: URL
  async function loadHistory(card) {
    const id = card.dataset.id;
    const img = state.images.get(id);
    const key = id + ":" + ((img && img.clinical && img.clinical.bodySite) || "") + ":" + ((img && img.clinical && img.clinical.laterality) || "");
    if (state.historyKey === key) return;
    state.historyKey = key;
    const list = $("history-list"), status = $("history-status");
    status.textContent = "Looking for earlier photos…";
    delete $("history").dataset.items;
    let items;
    try {
      items = (await call("GET", "/history?image=" + encodeURIComponent(id))).items || [];
    } catch (e) {
      if (state.historyKey !== key) return;
      list.textContent = "";
      status.textContent = "Earlier photos could not be read: " + e.message;
      state.historyKey = "";
      return;
    }
    if (state.historyKey !== key) return;
    list.textContent = "";
    status.textContent = items.length ? "" : "None in the patient's record.";
    for (const it of items) {
      const li = document.createElement("li");
      li.dataset.id = it.id;
      li.dataset.site = it.bodySite || "";
      li.dataset.side = SIDE_SHORT[it.laterality] || "";
      if (it.sameSite) li.classList.add("same");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "hist";
      const when = it.created ? new Date(it.created).toLocaleDateString("en-NZ", { day: "numeric", month: "short", year: "numeric" }) : "Date unknown";
      const im = document.createElement("img");
      im.alt = "";
      const cap = document.createElement("span");
      cap.className = "hist-cap";
      const where = [SIDE_SHORT[it.laterality] || "", siteName(it.bodySite)].filter(Boolean).join(" ");
      cap.textContent = when + (where ? " · " + where : "");
      const lead = document.createElement("span");
      lead.className = "visually-hidden";
      lead.textContent = "Compare with the earlier photo of ";
      b.append(lead, im, cap);
      if (it.sameSite) { const s = document.createElement("span"); s.className = "same-badge"; s.textContent = "Same site"; b.appendChild(s); }
      b.title = it.title || "";
      b.addEventListener("click", () => compare(state.cards.get(state.selected), it, when));
      li.appendChild(b);
      list.appendChild(li);
      historyThumb(it.id).then((url) => { if (url) im.src = url; });
    }
    $("history").dataset.items = String(items.length);
  }

  async function historyThumb(id) {
    if (historyThumbs.has(id)) return historyThumbs.get(id);
    try {
      const res = await fetch("/api/history/" + encodeURIComponent(id) + "/thumbnail", { headers: auth(), credentials: "omit" });
      if (!res.ok) return "";
      const url = URL.createObjectURL(await res.blob());
      historyThumbs.set(id, url);
      return url;
    } catch (e) { return ""; }
  }

  async function compare(card, it, when) {
    if (!card) return;
    stopEdit(card);
    const url = await historyThumb(it.id);
    const then = card.querySelector(".then");
    const im = card.querySelector(".then-img");
    im.src = url || "";
    im.alt = "Earlier photo: " + (it.title || "") + ", " + when;
    card.querySelector(".then-cap").textContent = "Earlier, " + when + (it.title ? ": " + it.title : "");
    then.hidden = false;
    card.querySelector(".viewer").classList.add("comparing");
    card.dataset.comparing = it.id;
    $("history-list").querySelectorAll("li").forEach((li) => li.classList.toggle("shown", li.dataset.id === it.id));
  }

  function closeCompare(card) {
    card.querySelector(".then").hidden = true;
    card.querySelector(".viewer").classList.remove("comparing");
    delete card.dataset.comparing;
    $("history-list").querySelectorAll("li.shown").forEach((li) => li.classList.remove("shown"));
  }

  function updateCard(card, img) {
    card.dataset.state = img.state;
    card.dataset.width = img.width;
    card.dataset.height = img.height;
    card.dataset.version = String(img.version);
    card._strip.dataset.state = img.state;
    loadPicture(card, img);
    // The title exactly as Medtech will show it (the server computes it).
    card.querySelector(".record-title-text").textContent = img.title || "";
    let text = STATE_TEXT[img.state] || img.state;
    if (img.state === "failed" && img.failReason) text += ": " + (card.dataset.message || "Medtech did not accept it. Try again.");
    card.querySelector(".state").textContent = text;
    card._strip.querySelector(".mini-state").textContent = STATE_SHORT[img.state] || img.state;
    // The strip's caption: site, side and view as saved.
    const c = img.clinical || {};
    const badges = card._strip.querySelector(".badges");
    badges.textContent = "";
    const add = (t, cls) => { const s = document.createElement("span"); s.className = "badge " + cls; s.textContent = t; badges.appendChild(s); };
    if (c.laterality && SIDE_SHORT[c.laterality]) add(SIDE_SHORT[c.laterality], "side");
    if (c.bodySite) add(siteName(c.bodySite) || "Site set", "site"); else add("No site", "nosite");
    if (c.view) add(viewName(c.view), "view");
    card._strip.querySelector(".pick-n").textContent = "Photo " + card.dataset.n + ":";
    card.querySelector(".edit-reset").hidden = !img.edited;
    const locked = img.state === "committed" || img.state === "committing";
    card.querySelectorAll("input, select, textarea, button").forEach((el) => {
      if (el.classList.contains("then-close")) return;
      el.disabled = locked;
    });
    if (locked) stopEdit(card);
    if (card.dataset.id === state.selected) loadHistory(card);
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
    // The neighbour is selected next, so the GP stays in the strip.
    const ids = [...state.cards.keys()];
    const i = ids.indexOf(card.dataset.id);
    const next = ids[i + 1] || ids[i - 1] || "";
    try {
      await call("DELETE", "/images/" + encodeURIComponent(card.dataset.id));
      if (next) select(next, false);
      refresh();
    } catch (e) { showError(errorBox, e); }
  }

  // --- uploads from this computer -----------------------------------------
  function addFiles(files) {
    for (const f of files) uploadOne(f);
  }

  // uploadOne sends one photo. Its idempotency key is made once, here, and
  // sent with every attempt (Retry included), so an attempt whose reply was
  // lost and is sent again returns the image already made, never a second.
  function uploadOne(file) {
    const key = idempotencyKey();
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
        status.textContent = "Check the details of photo " + card.dataset.n + " first: " + card.querySelector(".saved").textContent;
        select(card.dataset.id, false);
        card.querySelector(".site-q").focus();
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
