"""A shareable atlas: one self-contained HTML file (map, search, feature cards; no server, no
kernel, no external script) that opens in any browser, and the same file shown inside a notebook.

`atlas_data` gathers everything as plain data (tested directly); `render_html` writes the page.
The page holds text only (prompts and tokens, no images), so there is nothing for NudeNet to flag.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np
import torch

from snce_lib.atlas.clusters import MapClusters
from snce_lib.atlas.labels import FeatureLabel, clean, word_features
from snce_lib.atlas.map import Atlas
from snce_lib.io import atomic_write_text


def atlas_data(atlas: Atlas, labels: list[FeatureLabel], layout: MapClusters, w_dec: torch.Tensor,
               concept_score: np.ndarray | None = None, n_examples: int = 3, n_near: int = 5,
               title: str = "SAE feature atlas", shown: np.ndarray | None = None, note: str = "") -> dict:  # fmt: skip
    """The page's data: per feature its position, cluster, label with its score and kind, whether it is
    shown by default (`shown`; default every feature), frequency, a histogram of its activations,
    nearest features by decoder cosine and top prompts (token ids and activations); the prompts'
    tokens once; a word index (whole word -> the features it predicts best); `note`, the line that
    says what is set aside."""
    shown = np.ones(atlas.n_latents, dtype=bool) if shown is None else np.asarray(shown, dtype=bool)
    codes = atlas.codes
    w = torch.nn.functional.normalize(w_dec.detach().float(), dim=1)
    near = torch.topk(w @ w.T - 2 * torch.eye(len(w)), min(n_near, len(w) - 1), dim=1).indices.tolist()
    # every firing once: (feature, prompt, value), grouped by feature in one sort (no pass per feature)
    mask = codes.mask()
    prompt_of = torch.arange(len(codes.prompts)).view(-1, 1, 1).expand_as(codes.indices)
    on = (codes.values > 0) & mask.unsqueeze(-1)
    feat, prm, val = codes.indices[on].long(), prompt_of[on], codes.values[on]
    order = torch.argsort(
        feat * 4.0 * (float(val.max()) + 1 if len(val) else 1) - val
    )  # feature, then value descending
    feat, prm, val = feat[order], prm[order], val[order]
    starts = torch.searchsorted(feat, torch.arange(atlas.n_latents + 1)).tolist()
    used: dict[int, int] = {}
    feats = []
    for f in range(atlas.n_latents):
        lo, hi = starts[f], starts[f + 1]
        acts = val[lo:hi].numpy()
        rows, seen = [], set()
        for p, v in zip(prm[lo:hi].tolist(), acts.tolist()):  # strongest firing first: each prompt once
            if p in seen:
                continue
            seen.add(p)
            used.setdefault(p, len(used))
            per = (codes.values[p] * (codes.indices[p] == f)).sum(-1)[codes.real[p]]
            rows.append([used[p], [round(float(a), 3) for a in per], round(v, 3)])
            if len(rows) == n_examples:
                break
        hist = np.histogram(acts, bins=16)[0].tolist() if len(acts) else []
        lab = labels[f]
        feats.append({"x": round(float(layout.xy[f, 0]), 3), "y": round(float(layout.xy[f, 1]), 3),
                      "c": int(layout.cluster[f]), "label": lab.label, "status": lab.status, "freq": lab.frequency,
                      "kind": lab.kind, "lscore": lab.score, "shown": bool(shown[f]),
                      "top": lab.top_tokens, "near": near[f], "ex": rows, "hist": hist,
                      "hmax": round(float(acts.max()), 3) if len(acts) else 0.0,
                      "score": float(concept_score[f]) if concept_score is not None else None})  # fmt: skip
    prompts = [None] * len(used)
    for p, i in used.items():
        prompts[i] = [clean(atlas.token(t)) for t in codes.token_ids[p][codes.real[p]].tolist()]
    return {"title": title, "map": layout.name, "features": feats, "prompts": prompts, "note": note,
            "clusters": {str(k): v for k, v in layout.names.items()}, "words": {w: [f for f, _ in v] for w, v in word_features(atlas).items()}}  # fmt: skip


def render_html(data: dict) -> str:
    """The page: an SVG map (hover: label; click: card), a colour switch, a word search, the card."""
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return _PAGE.replace("__TITLE__", html.escape(data["title"])).replace("__DATA__", payload)


def write_atlas(data: dict, path: str | os.PathLike) -> Path:
    path = Path(path)
    atomic_write_text(path, render_html(data))
    return path


def notebook_frame(data: dict, height: int = 720):
    """The page inside an iframe, as an IPython HTML object to `display` (JupyterLab and Colab run
    its script: an iframe's `srcdoc` needs no server and no widget manager)."""
    import warnings

    from IPython.display import HTML

    frame = (f'<iframe srcdoc="{html.escape(render_html(data), quote=True)}" '
             f'style="width:100%;height:{height}px;border:1px solid #ddd"></iframe>')  # fmt: skip
    with warnings.catch_warnings():  # IPython suggests its IFrame, which needs a URL; srcdoc needs none
        warnings.simplefilter("ignore", UserWarning)
        return HTML(frame)


#: For the browser checks (tests, scripts/lab_check.py), run inside the page: each cluster name that
#: is not wholly inside both the map and the page's visible viewport, with its box. An empty list
#: means a reader sees every name; `.text` in selenium would only say whether any of it is shown.
HIDDEN_NAMES_JS = """const m = document.getElementById("map").getBoundingClientRect(), out = [];
const vw = window.innerWidth, vh = window.innerHeight;
for (const t of document.querySelectorAll("#map text.cl")) { const r = t.getBoundingClientRect();
  const inside = r.width > 0 && r.left >= m.left - 0.5 && r.right <= m.right + 0.5 && r.top >= m.top - 0.5
    && r.bottom <= m.bottom + 0.5 && r.left >= 0 && r.top >= 0 && r.right <= vw + 0.5 && r.bottom <= vh + 0.5;
  if (!inside) out.push([t.textContent, Math.round(r.left), Math.round(r.top), Math.round(r.right), Math.round(r.bottom)]); }
return {hidden: out, n: document.querySelectorAll("#map text.cl").length, map: [m.left, m.top, m.right, m.bottom],
        viewport: [vw, vh]};"""

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{font-family:sans-serif;margin:8px;color:#222} #top{display:flex;gap:12px;align-items:center;flex-wrap:wrap}
#main{display:flex;gap:12px;flex-wrap:wrap;align-items:flex-start} #mapbox{flex:1 1 360px;max-width:640px;min-width:0}
#map{display:block;width:100%;height:auto;border:1px solid #ccc;background:#fafafa} #card{flex:1 1 320px;min-width:0;font-size:14px}
circle{cursor:pointer} circle.hit{stroke:#000;stroke-width:2} .cl{font-size:11px;fill:#333;pointer-events:none}
.tok{padding:1px 2px;border-radius:3px} #hover{color:#555;height:1.2em} #note{color:#555;font-size:13px}
</style></head><body>
<h3>__TITLE__</h3>
<div id="top">colour by <select id="colour"><option value="c">cluster</option><option value="f">frequency</option>
<option value="s">concept score</option></select>
<input id="search" placeholder="search a word, press Enter"> <label><input type="checkbox" id="all"> show set-aside features</label>
<span id="status"></span></div>
<div id="note"></div>
<div id="hover"></div>
<div id="main"><div id="mapbox"><svg id="map" viewBox="0 0 640 560" preserveAspectRatio="xMidYMid meet"></svg></div>
<div id="card"><i>click a point</i></div></div>
<script>
const D = __DATA__;
const F = D.features, svg = document.getElementById("map"), NS = "http://www.w3.org/2000/svg";
const xs = F.map(f => f.x), ys = F.map(f => f.y);
const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
const px = x => 50 + 540 * (x - x0) / ((x1 - x0) || 1), py = y => 520 - 490 * (y - y0) / ((y1 - y0) || 1);
function hue(i) { return "hsl(" + ((i * 137.5) % 360) + ",65%,50%)"; }
function shade(v) { return "hsl(220,70%," + (90 - 60 * v) + "%)"; }
const maxLogF = Math.max(...F.map(f => Math.log10(f.freq + 1e-6))), minLogF = Math.min(...F.map(f => Math.log10(f.freq + 1e-6)));
const maxS = Math.max(...F.map(f => f.score || 0)) || 1;
document.getElementById("note").textContent = D.note || "";
const dots = F.map((f, i) => {
  const c = document.createElementNS(NS, "circle");
  c.setAttribute("cx", px(f.x)); c.setAttribute("cy", py(f.y)); c.setAttribute("r", 3); c.id = "f" + i;
  const t = document.createElementNS(NS, "title"); t.textContent = "feature " + i + ": " + f.label; c.appendChild(t);
  c.addEventListener("mouseenter", () => document.getElementById("hover").textContent = "feature " + i + ": " + f.label);
  c.addEventListener("click", () => card(i)); svg.appendChild(c); return c;
});
const cent = {};
F.forEach(f => { if (f.c >= 0) { const k = cent[f.c] || (cent[f.c] = [0, 0, 0]); k[0] += f.x; k[1] += f.y; k[2]++; } });
for (const [c, k] of Object.entries(cent)) {
  const t = document.createElementNS(NS, "text"); t.setAttribute("class", "cl"); t.setAttribute("text-anchor", "middle");
  t.textContent = D.clusters[c] || ""; svg.appendChild(t);
  // a name centred on its cluster, moved inwards where it would run past the map's edge (UMAP puts
  // clusters anywhere, and the drawn box is all a reader sees)
  const w = t.getComputedTextLength ? t.getComputedTextLength() : 6 * t.textContent.length;
  t.setAttribute("x", Math.min(Math.max(px(k[0] / k[2]), 4 + w / 2), 636 - w / 2));
  t.setAttribute("y", Math.min(Math.max(py(k[1] / k[2]), 16), 552));
}
// the notebook shows this page in an iframe of its own origin (srcdoc): grow that frame to the page
function fitFrame() {
  try { const fe = window.frameElement; if (fe) fe.style.height = (document.documentElement.scrollHeight + 8) + "px"; }
  catch (e) { /* a frame of another origin keeps its size */ }
}
window.addEventListener("load", fitFrame); window.addEventListener("resize", fitFrame);
function visible(i) { return F[i].shown || document.getElementById("all").checked; }
function showAll() { dots.forEach((d, i) => d.style.display = visible(i) ? "" : "none"); }
document.getElementById("all").addEventListener("change", showAll);
showAll();
function colour(by) {
  dots.forEach((d, i) => { const f = F[i];
    d.setAttribute("fill", by === "c" ? (f.c < 0 ? "#bbb" : hue(f.c))
      : by === "f" ? shade((Math.log10(f.freq + 1e-6) - minLogF) / ((maxLogF - minLogF) || 1))
      : shade((f.score || 0) / maxS)); });
}
document.getElementById("colour").addEventListener("change", e => colour(e.target.value));
colour("c");
function esc(s) { return String(s).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c])); }
function card(i) {
  const f = F[i];
  let h = "<h4>feature " + i + ": " + esc(f.label) + "</h4><div>" + f.status + " " + esc(f.kind.replace("_", "/"))
    + " feature, fires on " + (100 * f.freq).toFixed(3) + "% of positions; label score (F1 on held-out prompts): "
    + (f.lscore === null ? "none" : f.lscore.toFixed(2)) + "; strongest on: "
    + f.top.map(t => esc(t[0]) + " (" + t[1] + ")").join(", ") + "</div>";
  for (const [p, acts, best] of f.ex) {
    const vmax = Math.max(...acts, 1e-6);
    h += "<div style='margin:4px 0'><b>" + best.toFixed(2) + "</b> " + D.prompts[p].map((t, j) =>
      "<span class='tok' style='background:rgba(255,140,0," + (acts[j] / vmax).toFixed(2) + ")'>" + esc(t) + "</span>").join(" ") + "</div>";
  }
  if (f.hist.length) {
    const m = Math.max(...f.hist);
    h += "<div>activations where it fires (0 to " + f.hmax + ")</div><svg width='320' height='80'>" + f.hist.map((v, j) =>
      "<rect x='" + (j * 20) + "' y='" + (78 - 76 * v / m) + "' width='18' height='" + (76 * v / m) + "' fill='#f80'></rect>").join("") + "</svg>";
  }
  h += "<div>nearest by decoder cosine: " + f.near.map(n => "<a href='#' onclick='card(" + n + ");return false'>" + n
    + "</a> (" + esc(F[n].label) + ")").join(", ") + "</div>";
  document.getElementById("card").innerHTML = h;
  dots.forEach(d => d.classList.remove("hit")); dots[i].classList.add("hit");
  fitFrame();
}
document.getElementById("search").addEventListener("keydown", e => {
  if (e.key !== "Enter") return;
  const w = e.target.value.trim().toLowerCase(), hits = (D.words[w] || []).filter(visible);
  dots.forEach(d => d.setAttribute("r", 3));
  hits.forEach(i => dots[i].setAttribute("r", 7));
  document.getElementById("status").textContent = hits.length ? hits.length + " features fire on '" + w + "' (best label match first): " + hits.join(", ")
    : "no shown feature fires on '" + w + "' in this sample";
  if (hits.length) card(hits[0]); else document.getElementById("card").innerHTML = "<i>no feature fires on this word</i>";
});
</script></body></html>
"""
