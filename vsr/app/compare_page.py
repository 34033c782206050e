"""What `vsr compare` writes: a PNG sheet, or one self-contained HTML page.

The PNG is the panels at full output size side by side (labels in a bar above each, a box
around the detail region), with the region's nearest-neighbour crops in a row below.

The HTML page embeds every image as a `data:` URI and has no other URL at all (no CDN, no
fonts, no scripts from elsewhere), so it can be mailed or opened offline. It shows a
before/after slider (drag the picture or the range input; `?split=0.3` or `#split=0.3` sets the
start), left/right pickers for a third panel, a zoom (fit, 1x to 8x, pixelated; `?zoom=2`),
a button that zooms into the detail region, and the crops.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import SinkError
from ..media.color import Image

# Image is exported with the page's own names: `vsr.app.compare` takes all of them from here.
__all__ = [
    "BACKGROUND",
    "BOX",
    "GAP",
    "ZOOM",
    "Image",
    "Panel",
    "Region",
    "crop",
    "data_uri",
    "render_html",
    "render_png",
]

#: Nearest-neighbour enlargement of the detail crops: 3x makes single output pixels visible
#: without the crop outgrowing its panel (the crop is a quarter of the shorter side).
ZOOM = 3


@dataclass(frozen=True)
class Panel:
    """One upscaled version of the frame, at output size, and what made it."""

    label: str
    image: Image


@dataclass(frozen=True)
class Region:
    """A square of the output (x, y: top-left corner; size: side, in output pixels)."""

    x: int
    y: int
    size: int


def crop(image: Image, r: Region, zoom: int = ZOOM) -> Image:
    """The region, enlarged `zoom` times with nearest neighbour (every pixel a visible block)."""
    part = image[r.y : r.y + r.size, r.x : r.x + r.size]
    return np.asarray(cv2.resize(part, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST), np.uint8)


BACKGROUND = (32, 32, 32)
BOX = (0, 215, 255)  # BGR amber: visible on most pictures
GAP = 8


def render_png(panels: list[Panel], region: Region) -> Image:
    """Panels side by side at full size (>= twice the output width), crops below."""
    h, w = panels[0].image.shape[:2]
    bar = _bar_height(w)
    crops = [crop(p.image, region) for p in panels]
    ch = crops[0].shape[0]
    sheet = np.empty((2 * bar + h + GAP + ch, len(panels) * (w + GAP) - GAP, 3), np.uint8)
    sheet[:] = BACKGROUND
    for i, (p, c) in enumerate(zip(panels, crops, strict=True)):
        x = i * (w + GAP)
        _label(sheet, p.label, x, 0, w, bar)
        shown = p.image.copy()
        cv2.rectangle(
            shown,
            (region.x, region.y),
            (region.x + region.size - 1, region.y + region.size - 1),
            BOX,
            max(2, w // 480),
        )
        sheet[bar : bar + h, x : x + w] = shown
        top = bar + h + GAP
        _label(sheet, f"{p.label}, {ZOOM}x", x, top, w, bar)
        cw = min(c.shape[1], w)
        sheet[top + bar : top + bar + ch, x : x + cw] = c[:, :cw]
    return sheet


def _bar_height(width: int) -> int:
    return int(np.clip(width // 24, 16, 40))


def _label(sheet: Image, text: str, x: int, y: int, w: int, h: int) -> None:
    """White text in the bar at (x, y), shrunk until it fits the panel's width."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = h / 32
    thick = max(1, round(h / 20))
    while scale > 0.25 and cv2.getTextSize(text, font, scale, thick)[0][0] > w - 8:
        scale *= 0.9
    cv2.putText(sheet, text, (x + 4, y + int(h * 0.72)), font, scale, (255, 255, 255), thick, cv2.LINE_AA)


def data_uri(image: Image) -> str:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise SinkError("cannot encode the comparison as PNG")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def render_html(panels: list[Panel], region: Region, title: str, scale: int) -> str:
    """The page: slider (left: bicubic, right: vsr by default), zoom, detail crops."""
    h, w = panels[0].image.shape[:2]
    esc = html.escape
    imgs = "\n".join(
        f'<img class="layer" id="p{i}" alt="{esc(p.label)}" src="{data_uri(p.image)}">'
        for i, p in enumerate(panels)
    )
    options = "".join(f'<option value="{i}">{esc(p.label)}</option>' for i, p in enumerate(panels))
    crops = "\n".join(
        f'<figure><img class="crop" alt="{esc(p.label)} crop" '
        f'src="{data_uri(p.image[region.y : region.y + region.size, region.x : region.x + region.size])}">'
        f"<figcaption>{esc(p.label)}</figcaption></figure>"
        for p in panels
    )
    info = (
        f"{esc(title)} &middot; output {w}&times;{h} (x{scale}) &middot; most detailed region: "
        f"{region.size}&times;{region.size} at {region.x},{region.y}"
    )
    return (
        _PAGE.replace("$TITLE", esc(title))
        .replace("$INFO", info)
        .replace("$OPTIONS", options)
        .replace("$IMAGES", imgs)
        .replace("$CROPS", crops)
        .replace("$W", str(w))
        .replace("$H", str(h))
        .replace("$RX", str(region.x))
        .replace("$RY", str(region.y))
        .replace("$RS", str(region.size))
        .replace("$CZ", str(region.size * ZOOM))
    )


# No comments with two slashes below: the page must contain no "//" outside data: URIs.
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vsr compare: $TITLE</title>
<style>
body{margin:0;padding:12px;background:#202020;color:#ddd;font:14px system-ui,sans-serif}
h1{font-size:16px;margin:0 0 4px}p{margin:0 0 8px}
.controls{display:flex;flex-wrap:wrap;gap:12px;align-items:center;margin-bottom:8px}
.sides{display:flex;justify-content:space-between;max-width:100%}
#view{overflow:auto;max-width:100%;max-height:85vh;display:inline-block;vertical-align:top}
#stage{position:relative;cursor:ew-resize;touch-action:none;user-select:none}
.layer{position:absolute;left:0;top:0;width:100%;height:100%;display:none;-webkit-user-drag:none}
.zoomed .layer,.crop{image-rendering:pixelated}
#bar{position:absolute;z-index:3;top:0;bottom:0;width:2px;margin-left:-1px;background:#fff;pointer-events:none;
 box-shadow:0 0 2px #000}
.crops{display:flex;flex-wrap:wrap;gap:12px;margin-top:12px}
.crop{width:$CZpx;height:$CZpx;display:block}
figure{margin:0}figcaption{margin-top:4px}
</style></head>
<body>
<h1>vsr compare</h1>
<p>$INFO</p>
<div class="controls">
<label>left <select id="left">$OPTIONS</select></label>
<label>right <select id="right">$OPTIONS</select></label>
<label>split <input id="split" type="range" min="0" max="1000" value="500"></label>
<label>zoom <select id="zoom"><option value="fit">fit</option><option value="1">1x</option>
<option value="2">2x</option><option value="4">4x</option><option value="8">8x</option></select></label>
<button id="detail" type="button">zoom to the most detailed region</button>
</div>
<div class="sides" id="sides"><span id="lname"></span><span id="rname"></span></div>
<div id="view"><div id="stage">
$IMAGES
<div id="bar"></div>
</div></div>
<h2 style="font-size:15px">Most detailed region, $RS&times;$RS output pixels at $RX,$RY</h2>
<div class="crops">
$CROPS
</div>
<script>
(function () {
  "use strict";
  var W = $W, H = $H, R = {x: $RX, y: $RY, s: $RS};
  var stage = document.getElementById("stage"), view = document.getElementById("view");
  var bar = document.getElementById("bar"), range = document.getElementById("split");
  var left = document.getElementById("left"), right = document.getElementById("right");
  var zoomSel = document.getElementById("zoom");
  var layers = stage.querySelectorAll(".layer");
  var params = new URLSearchParams(location.search + "&" + location.hash.replace(/^#/, ""));
  var split = 0.5;
  function num(name, dflt, lo, hi) {
    var v = parseFloat(params.get(name));
    return isFinite(v) ? Math.min(hi, Math.max(lo, v)) : dflt;
  }
  function setSplit(s) {
    split = Math.min(1, Math.max(0, s));
    range.value = Math.round(split * 1000);
    var l = layers[left.value];
    if (l) { l.style.clipPath = "inset(0 " + ((1 - split) * 100) + "% 0 0)"; }
    bar.style.left = (split * 100) + "%";
  }
  function setSides() {
    for (var i = 0; i < layers.length; i++) {
      var shown = String(i) === left.value || String(i) === right.value;
      layers[i].style.display = shown ? "block" : "none";
      layers[i].style.zIndex = String(i) === left.value ? 2 : 1;
      layers[i].style.clipPath = "none";
    }
    document.getElementById("lname").textContent = "\\u25c0 " + layers[left.value].alt;
    document.getElementById("rname").textContent = layers[right.value].alt + " \\u25b6";
    setSplit(split);
  }
  function setZoom(z) {
    var factor = z === "fit" ? Math.min(1, (document.documentElement.clientWidth - 24) / W) : parseFloat(z);
    stage.style.width = (W * factor) + "px";
    stage.style.height = (H * factor) + "px";
    document.getElementById("sides").style.width = Math.min(W * factor, view.clientWidth || W * factor) + "px";
    stage.classList.toggle("zoomed", factor > 1);
    return factor;
  }
  function fromPointer(e) {
    var r = stage.getBoundingClientRect();
    setSplit((e.clientX - r.left) / r.width);
  }
  var dragging = false;
  stage.addEventListener("pointerdown", function (e) {
    dragging = true; stage.setPointerCapture(e.pointerId); fromPointer(e);
  });
  stage.addEventListener("pointermove", function (e) { if (dragging) { fromPointer(e); } });
  stage.addEventListener("pointerup", function () { dragging = false; });
  range.addEventListener("input", function () { setSplit(range.value / 1000); });
  left.addEventListener("change", setSides);
  right.addEventListener("change", setSides);
  zoomSel.addEventListener("change", function () { setZoom(zoomSel.value); });
  document.getElementById("detail").addEventListener("click", function () {
    zoomSel.value = "4";
    var f = setZoom("4");
    view.scrollLeft = (R.x + R.s / 2) * f - view.clientWidth / 2;
    view.scrollTop = (R.y + R.s / 2) * f - view.clientHeight / 2;
  });
  left.value = String(Math.round(num("left", 0, 0, layers.length - 1)));
  right.value = String(Math.round(num("right", 1, 0, layers.length - 1)));
  var z = params.get("zoom");
  zoomSel.value = ["fit", "1", "2", "4", "8"].indexOf(z) >= 0 ? z : "fit";
  setZoom(zoomSel.value);
  split = num("split", 0.5, 0, 1);
  setSides();
  window.addEventListener("resize", function () { if (zoomSel.value === "fit") { setZoom("fit"); } });
})();
</script>
</body></html>
"""
