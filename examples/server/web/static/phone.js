// The phone page: claims the handoff code from the URL fragment, then takes
// photos, shrinks them in the browser and uploads them one at a time with
// progress and retry. The phone token lives in this closure only: nothing is
// written to cookies or storage, and it is dropped when the page is left.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const MAX_SIDE = 2048; // the server normalises to this size too
  const SHRINK_OVER_BYTES = 1.5 * 1024 * 1024;
  let token = "";
  let sent = 0, failed = 0, n = 0;
  const queue = [];
  let busy = false;

  const status = (t) => { $("status").textContent = t; };
  const auth = () => ({ Authorization: "Bearer " + token });

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
      document.body.dataset.claimed = "true";
    } catch (e) {
      finish("Could not connect", e.message);
    }
  }

  // shrink downscales large photos with a canvas (applying the EXIF
  // orientation, dropping all metadata). Small ones, and ones the browser
  // cannot decode (HEIC outside Safari), go as they are: the server
  // normalises every photo anyway.
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
    li.dataset.state = "queued";
    const preview = document.createElement("img");
    preview.alt = "";
    preview.src = URL.createObjectURL(file); // in memory only; revoked once sent
    preview.addEventListener("error", () => { preview.hidden = true; });
    const name = document.createElement("span");
    name.textContent = "Photo " + i;
    const bar = document.createElement("progress");
    bar.max = 1; bar.value = 0;
    bar.setAttribute("aria-label", "Upload progress for photo " + i);
    const msg = document.createElement("span");
    msg.textContent = "Waiting…";
    li.append(preview, name, bar, msg);
    $("uploads").appendChild(li);
    const item = { file, li, bar, msg, preview, hint: hintQuery() };
    queue.push(item);
    pump();
  }

  async function pump() {
    if (busy) return;
    busy = true;
    while (queue.length && token) await send(queue.shift());
    busy = false;
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

  async function send(item) {
    const { li, bar, msg } = item;
    li.dataset.state = "uploading";
    msg.textContent = "Preparing…"; msg.className = "";
    try {
      const blob = item.blob || (item.blob = await shrink(item.file));
      msg.textContent = "Uploading…";
      await upload("/phone/images" + item.hint, blob, auth(), (p) => { bar.value = p; });
      li.dataset.state = "done";
      msg.textContent = "Sent"; msg.className = "ok";
      item.file = item.blob = null;
      URL.revokeObjectURL(item.preview.src);
      sent++;
    } catch (e) {
      li.dataset.state = "failed";
      msg.textContent = e.message; msg.className = "bad";
      if (e.status === 401 || e.status === 403 || e.status === 410) { finish("Disconnected", e.message); return; }
      const btn = document.createElement("button");
      btn.type = "button";
      if (e.status === 413 || e.status === 415 || e.status === 422) {
        // Sending the same file again cannot help: let the user dismiss it.
        btn.textContent = "Remove";
        btn.addEventListener("click", () => { URL.revokeObjectURL(item.preview.src); li.remove(); });
      } else {
        failed++;
        btn.textContent = "Retry";
        btn.addEventListener("click", () => { btn.remove(); failed--; queue.push(item); pump(); });
      }
      li.appendChild(btn);
    }
    document.body.dataset.sent = String(sent);
  }

  function finish(title, msg) {
    token = "";
    queue.length = 0;
    // Drop the photos from the page's memory too.
    for (const img of $("uploads").querySelectorAll("img")) URL.revokeObjectURL(img.src);
    $("uploads").replaceChildren();
    $("capture").hidden = true;
    $("end").hidden = false;
    $("end-title").textContent = title;
    $("end-msg").textContent = msg;
    status("");
    document.body.dataset.ended = "true";
  }

  $("camera").addEventListener("change", (e) => {
    for (const f of e.target.files) add(f);
    e.target.value = "";
  });
  $("done").addEventListener("click", () => {
    if (busy || queue.length) { status("Still sending; wait for every photo to show Sent."); return; }
    if (failed > 0 && !confirm(failed + " photo(s) were not sent. Finish anyway?")) return;
    finish("Finished", sent + " photo" + (sent === 1 ? " was" : "s were") + " sent to the desktop.");
  });
  window.addEventListener("pagehide", () => { token = ""; });

  claim();
})();
