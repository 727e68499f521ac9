// Rotate, crop and redact one photo on the desktop before it is sent, with
// the vendored Cropper.js 1.6.2 (vendor/cropperjs, MIT) for the crop frame.
//
// The editor turns the picture itself (a canvas, 90° steps) and gives
// Cropper the turned picture, so Cropper's frame is always in the pixels of
// the stored image after rotation: the coordinate system of
// POST /api/images/{id}/edit. Black boxes (redactions) are kept in the same
// pixels and turned with the picture.
//
// PhotoEditor.open(host, src, width, height, onChange) builds the editor in
// host from the picture at src (a blob: URL of the stored image, width x
// height) and returns { rotate(deg), blackOut(), undoBlackOut(), edit(),
// close(), boxes() }. edit() is the request body (rotate, crop if the
// frame is smaller than the picture, redact).
"use strict";
window.PhotoEditor = (function () {
  function turnRect(r, deg, w, h) {
    // r in a w x h picture; the picture turns by deg (90 clockwise or -90).
    if (deg === 90) return { x: h - r.y - r.h, y: r.x, w: r.h, h: r.w };
    return { x: r.y, y: w - r.x - r.w, w: r.h, h: r.w };
  }

  function turnedURL(img, rotate) {
    return new Promise((resolve) => {
      if (rotate === 0) { resolve(null); return; }
      const c = document.createElement("canvas");
      const w = img.naturalWidth, h = img.naturalHeight;
      c.width = rotate % 180 ? h : w;
      c.height = rotate % 180 ? w : h;
      const g = c.getContext("2d");
      g.translate(c.width / 2, c.height / 2);
      g.rotate(rotate * Math.PI / 180);
      g.drawImage(img, -w / 2, -h / 2);
      c.toBlob((b) => resolve(b ? URL.createObjectURL(b) : null), "image/png");
    });
  }

  function open(host, src, width, height, onChange) {
    host.textContent = "";
    const source = new Image();
    source.src = src;
    const img = document.createElement("img");
    img.alt = "Photo being edited";
    img.className = "edit-img";
    img.src = src;
    host.appendChild(img);
    let rotate = 0, redact = [], turned = null, layer = null, closed = false;
    const size = () => (rotate % 180 ? { w: height, h: width } : { w: width, h: height });

    const cropper = new Cropper(img, {
      viewMode: 1, dragMode: "crop", autoCropArea: 1, checkOrientation: false, checkCrossOrigin: false,
      movable: false, zoomable: false, zoomOnWheel: false, scalable: false, rotatable: false,
      background: false, restore: false, toggleDragModeOnDblclick: false, responsive: true,
      ready() { draw(); host.dataset.ready = "true"; onChange(); },
      crop() { onChange(); },
    });

    // draw places the black boxes over Cropper's picture, under its frame.
    function draw() {
      if (closed || !cropper.canvas) return;
      if (!layer) {
        layer = document.createElement("div");
        layer.className = "redact-layer";
        layer.setAttribute("aria-hidden", "true");
        cropper.canvas.after(layer);
      }
      const cd = cropper.getCanvasData();
      layer.style.left = cd.left + "px";
      layer.style.top = cd.top + "px";
      layer.style.width = cd.width + "px";
      layer.style.height = cd.height + "px";
      layer.textContent = "";
      const s = size();
      for (const r of redact) {
        const b = document.createElement("div");
        b.className = "redact-box";
        b.style.left = (100 * r.x / s.w) + "%";
        b.style.top = (100 * r.y / s.h) + "%";
        b.style.width = (100 * r.w / s.w) + "%";
        b.style.height = (100 * r.h / s.h) + "%";
        layer.appendChild(b);
      }
    }
    const onResize = () => setTimeout(draw, 0);
    window.addEventListener("resize", onResize);

    // frame is Cropper's frame in picture pixels, kept inside the picture.
    function frame() {
      const d = cropper.getData(true);
      const s = size();
      const x = Math.max(0, Math.min(s.w - 1, d.x)), y = Math.max(0, Math.min(s.h - 1, d.y));
      return { x, y, w: Math.max(1, Math.min(s.w - x, d.width)), h: Math.max(1, Math.min(s.h - y, d.height)) };
    }
    function fullFrame() { const s = size(); cropper.setData({ x: 0, y: 0, width: s.w, height: s.h }); }

    async function turn(deg) {
      const before = size();
      redact = redact.map((r) => turnRect(r, deg, before.w, before.h));
      rotate = (rotate + deg + 360) % 360;
      if (!source.complete) await new Promise((r) => { source.onload = r; });
      const url = await turnedURL(source, rotate);
      if (closed) { if (url) URL.revokeObjectURL(url); return; }
      if (turned) URL.revokeObjectURL(turned);
      turned = url;
      host.dataset.ready = "false";
      layer = null; // Cropper rebuilds its canvas
      cropper.replace(url || src);
    }

    return {
      rotate: (deg) => turn(deg),
      blackOut() {
        const f = frame(), s = size();
        if (f.w >= s.w && f.h >= s.h) return false; // the whole picture: frame an area first
        redact.push(f);
        fullFrame();
        draw();
        onChange();
        return true;
      },
      undoBlackOut() { redact.pop(); draw(); onChange(); },
      boxes: () => redact.length,
      rotation: () => rotate,
      edit() {
        const f = frame(), s = size();
        const out = { rotate, redact: redact.map((r) => ({ x: r.x, y: r.y, w: r.w, h: r.h })) };
        if (f.x > 0 || f.y > 0 || f.w < s.w || f.h < s.h) out.crop = f;
        return out;
      },
      changed() { const e = this.edit(); return e.rotate !== 0 || e.redact.length > 0 || !!e.crop; },
      close() {
        closed = true;
        window.removeEventListener("resize", onResize);
        cropper.destroy();
        if (turned) URL.revokeObjectURL(turned);
        host.textContent = "";
      },
    };
  }
  return { open };
})();
