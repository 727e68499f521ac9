// The body map beside the desktop's body-site search: a front and a back
// figure drawn in SVG whose regions each stand for one SNOMED CT body site
// of the server's value set (GET /bodysites). A region of a paired structure
// (arm, leg, hand, shoulder...) also proposes the side, as seen on the
// patient: on the front view the patient's right is on the viewer's left;
// on the back view the patient's right is on the viewer's right.
//
// BodyMap.create(onPick) returns an element; onPick({code, name, side})
// is called with side "left", "right" or "" (unpaired) when a region is
// chosen by click, Enter or Space. BodyMap.mark(el, code, side) highlights
// the region of a site already chosen.
"use strict";
window.BodyMap = (function () {
  const NS = "http://www.w3.org/2000/svg";
  // Codes present in media's body-site value set (checked by the desktop
  // browser test against /bodysites).
  const SITE = {
    face: ["89545001", "Face"], backScalp: ["79951008", "Back of scalp"],
    frontNeck: ["11584001", "Front of neck"], backNeck: ["4658004", "Back of neck"],
    shoulder: ["16982005", "Shoulder"], chest: ["51185008", "Chest"], upperBack: ["699893008", "Upper back"],
    abdomen: ["818981001", "Abdomen"], lowerBack: ["37822005", "Lower back"],
    groin: ["26893007", "Groin"], buttock: ["46862004", "Buttock"],
    upperArm: ["40983000", "Upper arm"], forearm: ["14975008", "Forearm"], hand: ["85562004", "Hand"],
    thigh: ["68367000", "Thigh"], knee: ["72696002", "Knee"], backKnee: ["32361000", "Back of knee"],
    lowerLeg: ["30021000", "Lower leg"], calf: ["53840002", "Calf"], foot: ["56459004", "Foot"], heel: ["76853006", "Heel"],
  };
  // Shapes on a 120 x 250 figure. x is on the viewer's left half; paired
  // shapes are mirrored (120 - x - w) for the viewer's right.
  // [shape, front site, back site, paired, geometry]
  const SHAPES = [
    ["ellipse", "face", "backScalp", false, { cx: 60, cy: 20, rx: 13, ry: 16 }],
    ["rect", "frontNeck", "backNeck", false, { x: 53, y: 35, width: 14, height: 11 }],
    ["rect", "chest", "upperBack", false, { x: 41, y: 46, width: 38, height: 33, rx: 6 }],
    ["rect", "abdomen", "lowerBack", false, { x: 42, y: 79, width: 36, height: 29, rx: 3 }],
    ["rect", "groin", "buttock", true, { x: 42, y: 108, width: 18, height: 15, rx: 3 }],
    ["ellipse", "shoulder", "shoulder", true, { cx: 36, cy: 53, rx: 9, ry: 8 }],
    ["rect", "upperArm", "upperArm", true, { x: 26, y: 61, width: 12, height: 34, rx: 5 }],
    ["rect", "forearm", "forearm", true, { x: 22, y: 96, width: 12, height: 34, rx: 5 }],
    ["ellipse", "hand", "hand", true, { cx: 27, cy: 140, rx: 7, ry: 10 }],
    ["rect", "thigh", "thigh", true, { x: 42, y: 123, width: 17, height: 47, rx: 6 }],
    ["rect", "knee", "backKnee", true, { x: 43, y: 170, width: 15, height: 13, rx: 5 }],
    ["rect", "lowerLeg", "calf", true, { x: 44, y: 183, width: 13, height: 44, rx: 5 }],
    ["ellipse", "foot", "heel", true, { cx: 50, cy: 235, rx: 9, ry: 6 }],
  ];

  function mirror(shape, g) {
    const m = Object.assign({}, g);
    if (shape === "ellipse") m.cx = 120 - g.cx;
    else m.x = 120 - g.x - g.width;
    return m;
  }

  function el(name, attrs, text) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text) e.textContent = text;
    return e;
  }

  function figure(view, onPick) {
    const front = view === "front";
    const svg = el("svg", { viewBox: "0 0 120 262", class: "figure", role: "group", "aria-label": front ? "Front of the body" : "Back of the body" });
    const label = (txt, x) => svg.appendChild(el("text", { x, y: 258, "text-anchor": "middle", class: "side-label", "aria-hidden": "true" }, txt));
    // Side letters under the feet: the patient's right is on the viewer's
    // left on the front view and on the viewer's right on the back view.
    label(front ? "R" : "L", 14);
    label(front ? "L" : "R", 106);
    for (const [shape, fkey, bkey, paired, g] of SHAPES) {
      const key = front ? fkey : bkey;
      const [code, name] = SITE[key];
      const variants = paired ? [[g, front ? "right" : "left"], [mirror(shape, g), front ? "left" : "right"]] : [[g, ""]];
      for (const [geo, side] of variants) {
        const full = (side ? (side === "left" ? "Left " : "Right ") + name.toLowerCase() : name);
        const r = el(shape, Object.assign({ class: "region", tabindex: 0, role: "button", "data-code": code, "data-side": side, "data-view": view, "aria-label": full + (front ? " (front)" : " (back)") }, geo));
        r.appendChild(el("title", {}, full));
        const pick = () => onPick({ code, name, side });
        r.addEventListener("click", pick);
        r.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(); } });
        svg.appendChild(r);
      }
    }
    return svg;
  }

  function create(onPick) {
    const wrap = document.createElement("div");
    wrap.className = "bodymap-figures";
    for (const view of ["front", "back"]) {
      const f = document.createElement("figure");
      f.appendChild(figure(view, onPick));
      const cap = document.createElement("figcaption");
      cap.textContent = view === "front" ? "Front: patient's right on your left" : "Back: patient's right on your right";
      f.appendChild(cap);
      wrap.appendChild(f);
    }
    return wrap;
  }

  // mark highlights the regions showing code on the given side.
  function mark(root, code, side) {
    root.querySelectorAll(".region").forEach((r) => {
      const on = !!code && r.dataset.code === code && (!r.dataset.side || !side || r.dataset.side === side);
      r.classList.toggle("chosen", on);
    });
  }

  return { create, mark, SITE };
})();
