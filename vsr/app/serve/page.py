"""The job service's web pages: the job list with a submit form, and a job's before/after.

The job page is one static document: its script asks the API for the jobs every second and
builds the table with `textContent` only, never HTML from job data (a job's paths come from
strangers). With a token, the page asks for it once, keeps it in the tab's sessionStorage,
and sends it as a bearer header with every call; downloads and before/after pages are then
fetched with it and opened as blobs, since a plain link cannot carry a header.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ...errors import UsageError
from ...media.grab import grab_frame
from ..arguments import time_value
from ..compare import detail_region
from ..compare_page import Panel, render_html


def compare_page(root: Path, job_input: str, output: Path, start: str | float | None = None) -> str:
    """`vsr compare`'s page for a finished job: the output's middle frame against the same
    moment of the input, enlarged bicubically to the output's size.

    Raises:
        UsageError: the input is a URL or gone, or a frame cannot be read.
    """
    if "://" in job_input:
        raise UsageError("before/after needs a local input; this job's is a URL")
    source = (root / job_input).resolve()
    if not source.is_file():
        raise UsageError(f"input '{job_input}' is gone")
    after = grab_frame(str(output), None)
    offset = time_value(str(start)) if start not in (None, "", 0) else 0.0
    before = grab_frame(str(source), (after.seconds or 0.0) + offset)
    h, w = after.bgr.shape[:2]
    bicubic = np.asarray(cv2.resize(before.bgr, (w, h), interpolation=cv2.INTER_CUBIC), np.uint8)
    scale = max(1, round(w / before.bgr.shape[1]))
    panels = [Panel("bicubic", bicubic), Panel(f"vsr: {output.name}", after.bgr)]
    when = f" at {after.seconds:.2f}s" if after.seconds is not None else ""
    return render_html(panels, detail_region(after.bgr), f"{job_input}{when}", scale)


def index_page(needs_token: bool) -> str:
    return _INDEX.replace("$NEEDS_TOKEN", "true" if needs_token else "false")


_INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vsr jobs</title>
<style>
body{margin:0;padding:16px;background:#1e1e1e;color:#ddd;font:14px system-ui,sans-serif}
h1{font-size:18px;margin:0 0 12px}
form{display:flex;flex-wrap:wrap;gap:8px;align-items:end;margin-bottom:16px}
label{display:flex;flex-direction:column;gap:2px;font-size:12px;color:#aaa}
input,select,button{font:inherit;background:#2b2b2b;color:#eee;border:1px solid #555;border-radius:4px;padding:4px 6px}
button{cursor:pointer}button:hover{background:#3a3a3a}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #333;vertical-align:middle}
th{color:#aaa;font-weight:normal}
.bar{width:120px;height:8px;background:#333;border-radius:4px;overflow:hidden;display:inline-block}
.bar>div{height:100%;background:#4caf50}
.status-failed{color:#ff7b72}.status-done{color:#7ee787}.status-running{color:#79c0ff}
.status-cancelled{color:#999}
#message{min-height:1.2em;margin-bottom:8px}.error{color:#ff7b72}
#token-box{display:none;margin-bottom:12px}
</style></head>
<body>
<h1>vsr jobs</h1>
<div id="token-box"><label>Token <input id="token" type="password" autocomplete="off"></label>
<button id="token-save" type="button">Use token</button></div>
<form id="submit">
<label>Input (relative to the root) <input id="in" required size="28" placeholder="in/clip.mp4"></label>
<label>Output (optional) <input id="out" size="28" placeholder="in/clip_x3.mp4"></label>
<label>Scale <select id="scale"><option value="">default</option><option>2</option><option>3</option><option>4</option></select></label>
<label>Quality <select id="quality"><option value="">default</option><option>fast</option><option>balanced</option><option>quality</option></select></label>
<label>CRF <input id="crf" type="number" min="0" max="63" size="4"></label>
<label>Segments <input id="segments" type="number" min="1" size="4"></label>
<label><span>Overwrite</span><input id="overwrite" type="checkbox"></label>
<button type="submit">Submit</button>
</form>
<div id="message"></div>
<table><thead><tr><th>Job</th><th>Status</th><th>Input</th><th>Output</th><th>Progress</th>
<th>fps</th><th>Model</th><th></th></tr></thead><tbody id="jobs"></tbody></table>
<script>
"use strict";
const needsToken = $NEEDS_TOKEN;
const tokenKey = "vsr-token";
function headers(extra) {
  const h = Object.assign({}, extra || {});
  const t = sessionStorage.getItem(tokenKey);
  if (t) { h["Authorization"] = "Bearer " + t; }
  return h;
}
function say(text, isError) {
  const m = document.getElementById("message");
  m.textContent = text;
  m.className = isError ? "error" : "";
}
async function api(method, path, body) {
  const init = {method: method, headers: headers(body ? {"Content-Type": "application/json"} : {})};
  if (body) { init.body = JSON.stringify(body); }
  const r = await fetch(path, init);
  if (r.status === 401) { document.getElementById("token-box").style.display = "block"; }
  return r;
}
async function errorOf(r) {
  try { const j = await r.json(); return j.error + (j.hint ? " (" + j.hint + ")" : ""); }
  catch (e) { return "HTTP " + r.status; }
}
async function openBlob(path, download) {
  const r = await api("GET", path);
  if (!r.ok) { say(await errorOf(r), true); return; }
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement("a");
  a.href = url;
  if (download) { a.download = download; } else { a.target = "_blank"; }
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
}
function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (cls) { td.className = cls; }
  row.appendChild(td);
  return td;
}
function button(td, label, action) {
  const b = document.createElement("button");
  b.type = "button"; b.textContent = label; b.addEventListener("click", action);
  td.appendChild(b);
}
function render(jobs) {
  const body = document.getElementById("jobs");
  body.textContent = "";
  for (const j of jobs) {
    const tr = document.createElement("tr");
    tr.dataset.id = j.id; tr.dataset.status = j.status;
    cell(tr, j.id);
    cell(tr, j.status + (j.error ? ": " + j.error : ""), "status-" + j.status);
    cell(tr, j.input); cell(tr, j.output);
    const p = j.progress || {};
    const td = cell(tr, "");
    const bar = document.createElement("span"); bar.className = "bar";
    const fill = document.createElement("div");
    const share = j.status === "done" ? 1 : (p.total ? Math.min(1, p.frames / p.total) : 0);
    fill.style.width = Math.round(share * 100) + "%";
    bar.appendChild(fill); td.appendChild(bar);
    td.appendChild(document.createTextNode(" " + (p.frames || 0) + (p.total ? " / " + p.total : "")
      + (p.eta_s ? " (" + p.eta_s + " s left)" : "")));
    cell(tr, p.fps != null ? p.fps : "");
    cell(tr, j.model ? j.model + " on " + (j.provider || "?") + " " + (j.precision || "") : "");
    const actions = cell(tr, "");
    if (j.status === "queued" || j.status === "running") {
      button(actions, "Cancel", async function () {
        const r = await api("DELETE", "/v1/jobs/" + encodeURIComponent(j.id));
        if (!r.ok) { say(await errorOf(r), true); }
        refresh();
      });
    }
    if (j.status === "done") {
      const name = (j.output || "output").split("/").pop();
      button(actions, "Download", function () { openBlob("/v1/jobs/" + encodeURIComponent(j.id) + "/output", name); });
      button(actions, "Before/after", function () { openBlob("/v1/jobs/" + encodeURIComponent(j.id) + "/compare", null); });
    }
    body.appendChild(tr);
  }
}
async function refresh() {
  try {
    const r = await api("GET", "/v1/jobs?limit=200");
    if (r.ok) { render((await r.json()).jobs); }
  } catch (e) { say("the service does not answer", true); }
}
document.getElementById("submit").addEventListener("submit", async function (ev) {
  ev.preventDefault();
  const options = {};
  for (const k of ["scale", "crf", "segments"]) {
    const v = document.getElementById(k).value;
    if (v !== "") { options[k] = Number(v); }
  }
  const q = document.getElementById("quality").value;
  if (q) { options.quality = q; }
  if (document.getElementById("overwrite").checked) { options.overwrite = true; }
  const body = {input: document.getElementById("in").value, options: options};
  const out = document.getElementById("out").value;
  if (out) { body.output = out; }
  const r = await api("POST", "/v1/jobs", body);
  if (r.ok) { const j = await r.json(); say("queued job " + j.id, false); }
  else { say(await errorOf(r), true); }
  refresh();
});
document.getElementById("token-save").addEventListener("click", function () {
  sessionStorage.setItem(tokenKey, document.getElementById("token").value);
  document.getElementById("token-box").style.display = "none";
  refresh();
});
if (needsToken && !sessionStorage.getItem(tokenKey)) {
  document.getElementById("token-box").style.display = "block";
}
refresh();
setInterval(refresh, 1000);
</script>
</body></html>
"""
