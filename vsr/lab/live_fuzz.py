"""The live fault corpus: the live twin of `vsr.lab.fuzz`. Generated live streams with the
faults live sources have, sent over UDP and TCP on loopback to `vsr live`, and how each run
is judged.

Why: file mode is held to a corpus of hundreds of damaged inputs; live input meets other
faults: an encoder restarted behind the same port (its clock from the start again), a clock
that jumps forward or back or wraps at 2^33, a resolution switch, lost or damaged UDP
datagrams, a TCP connection cut in the middle of a packet, a pause, a source that goes away.
Whatever happens, `vsr live` must end as expected (0, or 1 when the source went away for
good, with the message in words), leave a playable recording whose timeline increases with
no collapsed run (no 10 consecutive frames within 2 ms), start audio with video, never hang,
crash or print a traceback or an FFmpeg message, and keep its memory bounded.

How: every scenario is named `PROTO~KIND~SOURCE~SEED` and rebuilt from its name alone.
SOURCE is "pattern" (the test pattern) or a clip of ../shared/videos or samples/sample.mp4,
prepared once per corpus run as a small H.264 + AAC MPEG-TS (`live_sender.prepare_clip`).
The stream (`live_sender.Part`s, timing and fault strengths drawn from random.Random(name))
goes out in real time (`live_sender.send`) to `vsr live URL OUT --stats json --duration D
--stall-timeout 1.5 --reconnect R --model x1.onnx`; the x1 model is one ONNX Identity node
(as in `vsr.lab.fuzz`), so the run measures input handling, not the network. Checked after:
the exit status and stderr, the done record, the recording (decoded in a process of its own:
`--probe`), the peak RSS (sampled from /proc). Shared by scripts/media/live_fuzz.py (the
whole corpus) and tests/test_live_fuzz_sample.py (a fixed sample).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..paths import ROOT, SAMPLE, SHARED_VIDEOS
from .fuzz import identity_model
from .live_sender import Part, Sent, Wire, prepare_clip, send

UDP_KINDS = (
    "intact",
    "restart",
    "restart_stall",
    "jump_forward",
    "jump_back",
    "wrap",
    "resize",
    "resize_restart",
    "loss",
    "corrupt",
    "loss_restart",
    "pause",
    "gone",
)
TCP_KINDS = ("intact", "reconnect", "cut", "cut_gone", "jump_forward", "jump_back", "wrap", "resize", "pause")
#: Kinds whose source goes away for good: `vsr live` must end with exit 1 and say so.
GONE = {"gone", "cut_gone"}
STALL = 1.5  # --stall-timeout of every run
SIZES = ((96, 64), (128, 72), (160, 90), (112, 112))
STATUSES = ("ok", "hang", "crash", "traceback", "bad_output", "wrong_exit")
#: Bars besides the statuses: the A/V start gap (seconds) and RSS (MiB) a run may reach.
AV_GAP = 0.1
RSS_MIB = 1024


@dataclass(frozen=True)
class Scenario:
    """One corpus entry; its `name` is enough to rebuild it."""

    proto: str  # "udp" or "tcp"
    kind: str
    source: str  # "pattern" or a clip's file name
    seed: int = 0

    @property
    def name(self) -> str:
        return f"{self.proto}~{self.kind}~{self.source}~{self.seed}"

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() or c in "._-" else "_" for c in self.name)


@dataclass
class Result:
    """What one run did, and how it is judged."""

    name: str
    proto: str
    kind: str
    status: str
    exit_code: int | None
    expected_exit: int
    seconds: float
    last_stderr: str = ""
    ffmpeg_message: bool = False  # FFmpeg's error text instead of words ("Immediate exit requested")
    frames_sent: int = 0
    frames_in: int = 0  # decoded by vsr (done record)
    frames_out: int = 0  # in the recording
    monotonic: bool = True
    collapsed: bool = False  # 10 consecutive frames within 2 ms
    av_gap: float | None = None  # |first video - first audio| in the recording
    rss_mib: float = 0.0
    overrun: float = 0.0  # done record's seconds past --duration (0 for runs that end before)
    discontinuities: int = 0
    reconnects: int = 0
    size_changes: int = 0
    damage: int = 0  # undecodable packets + concealed frames (done record)
    lost: int = 0  # datagrams the wire dropped
    corrupted: int = 0

    @property
    def clean(self) -> bool:
        return (
            self.status == "ok"
            and self.monotonic
            and not self.collapsed
            and not self.ffmpeg_message
            and (self.av_gap is None or self.av_gap <= AV_GAP)
            and self.rss_mib <= RSS_MIB
        )


def source_clips() -> list[Path]:
    """The real clips (../shared/videos when present, and the bundled sample)."""
    found = (
        sorted(p for p in SHARED_VIDEOS.glob("*") if p.is_file() and p.suffix.lower() not in {".md", ".txt"})
        if SHARED_VIDEOS.is_dir()
        else []
    )
    return [*found, SAMPLE] if SAMPLE.exists() else found


def build(
    seeds: int | None = None, minimum: int = 200, clips: Sequence[Path] | None = None
) -> list[Scenario]:
    """The whole corpus in a fixed order: every kind of both transports over every source,
    repeated with new seeds until there are at least `minimum` scenarios (or `seeds` times)."""
    sources = ["pattern", *(p.name for p in (source_clips() if clips is None else clips))]
    per_round = (len(UDP_KINDS) + len(TCP_KINDS)) * len(sources)
    rounds = seeds if seeds is not None else max(1, -(-minimum // per_round))
    out = []
    for seed in range(rounds):
        for source in sources:
            out += [Scenario("udp", k, source, seed) for k in UDP_KINDS]
            out += [Scenario("tcp", k, source, seed) for k in TCP_KINDS]
    return out


class Clips:
    """The prepared clips of a corpus run (made on first use, shared between threads)."""

    def __init__(self, folder: Path, clips: Sequence[Path] | None = None) -> None:
        self.folder = folder
        self.by_name = {p.name: p for p in (source_clips() if clips is None else clips)}
        self.lock = threading.Lock()
        self.made: dict[tuple[str, tuple[int, int]], Path] = {}

    def get(self, source: str, size: tuple[int, int]) -> Path:
        with self.lock:
            key = (source, size)
            if key not in self.made:
                self.folder.mkdir(parents=True, exist_ok=True)
                path = self.folder / f"{Path(source).stem}_{size[0]}x{size[1]}.ts"
                clip = None if source == "pattern" else self.by_name[source]
                self.made[key] = prepare_clip(clip, path, size, 3.0)
            return self.made[key]


@dataclass(frozen=True)
class Plan:
    """How a scenario is run: what is sent, and how vsr is started."""

    parts: list[Part]
    wire: Wire
    duration: float  # --duration
    reconnect: float  # --reconnect
    output: str  # the recording's extension
    expected_exit: int


def plan(sc: Scenario, clips: Clips, port: int) -> Plan:
    """The parts, wire and vsr options of a scenario (deterministic in its name)."""
    rng = random.Random(sc.name)
    size = rng.choice(SIZES)
    other = rng.choice([s for s in SIZES if s != size])
    a = clips.get(sc.source, size)
    b = clips.get(sc.source, other) if "resize" in sc.kind else a

    def length() -> float:
        return round(rng.uniform(1.5, 2.6), 2)

    parts = [Part(a, length())]
    loss = corrupt = 0.0
    cut: float | None = None
    k = sc.kind
    if k in ("intact", "gone"):
        parts.append(Part(a, length()))
    elif k in ("restart", "resize_restart", "loss_restart"):
        parts.append(Part(b, length(), clock="restart", pause=round(rng.uniform(0.2, 0.9), 2)))
    elif k == "restart_stall":
        parts.append(Part(b, length(), clock="restart", pause=round(rng.uniform(STALL + 0.8, STALL + 2), 2)))
    elif k == "reconnect":
        parts.append(
            Part(b, length(), clock="restart", reconnect=True, pause=round(rng.uniform(0.2, 1.5), 2))
        )
    elif k == "jump_forward":
        parts.append(Part(a, length(), clock="jump", jump=rng.choice([15.0, 60.0, 3600.0, 20000.0])))
    elif k == "jump_back":
        parts.append(Part(a, length(), clock="jump", jump=-rng.choice([0.5, 2.0, 10.0, 300.0])))
    elif k == "wrap":
        parts = [Part(a, length(), clock="wrap", jump=round(rng.uniform(0.3, 1.2), 2)), Part(b, length())]
    elif k == "resize":
        parts += [Part(b, length()), Part(a, length())]
    elif k == "pause":
        parts.append(Part(a, length(), pause=round(rng.uniform(0.3, STALL - 0.4), 2)))
    elif k == "cut":
        cut = round(rng.uniform(0.8, 1.4), 2)
        parts.append(
            Part(b, length(), clock="restart", reconnect=True, pause=round(rng.uniform(0.2, 0.8), 2))
        )
    elif k == "cut_gone":
        cut = round(rng.uniform(0.8, 1.4), 2)
        parts.append(Part(a, length()))
    if k in ("loss", "loss_restart"):
        loss = rng.choice([0.005, 0.01, 0.02, 0.05])
    if k == "corrupt":
        corrupt = rng.choice([0.005, 0.01, 0.02, 0.05])
    if k == "loss":
        parts.append(Part(a, length()))
    if sc.proto == "tcp" and k in ("jump_forward", "jump_back", "wrap", "resize", "pause", "intact"):
        pass  # one connection throughout
    url = f"{sc.proto}://127.0.0.1:{port}"
    total = sum(p.seconds + p.pause for p in parts)
    gone = k in GONE
    reconnect = 1.5 if gone else 4.0
    duration = round(total + (STALL + reconnect + 8 if gone else 2.5), 2)
    output = rng.choice([".mkv", ".ts", ".mp4"])
    return Plan(
        parts,
        Wire(url, loss=loss, corrupt=corrupt, cut_after=cut, seed=rng.randrange(1 << 30)),
        duration,
        reconnect,
        output,
        1 if gone else 0,
    )


def _free_port(proto: str) -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(proto: str, port: int) -> bool:
    """Whether something on this machine has bound `port` (UDP) or listens on it (TCP), from
    /proc/net (Linux); True where that cannot be read."""
    tables = [Path(f"/proc/net/{proto}"), Path(f"/proc/net/{proto}6")]
    if not tables[0].exists():
        return True
    local = f":{port:04X}"
    for t in tables:
        if not t.exists():
            continue
        for line in t.read_text().splitlines()[1:]:
            cols = line.split()
            if cols[1].endswith(local) and (proto == "udp" or cols[3] == "0A"):
                return True
    return False


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def probe(path: Path) -> dict[str, Any]:
    """What a recording holds: video frame times (decode order), and each stream type's
    first time; {"error": ...} when it cannot be read."""
    import av

    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                return {"error": "no video stream"}
            times = [
                float(f.pts * f.time_base)
                for f in c.decode(video=0)
                if f.pts is not None and f.time_base is not None
            ]
        first: dict[str, float] = {}
        with av.open(str(path)) as c:
            for pk in c.demux():
                if pk.pts is not None and pk.size:
                    t = float(pk.pts * pk.time_base)
                    first[pk.stream.type] = min(first.get(pk.stream.type, t), t)
    except Exception as exc:  # noqa: BLE001 - any failure to read it makes it unplayable
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"times": times, "first": first}


def _probe(path: Path, timeout: float = 60) -> Any:
    """`probe` in a process of its own (PyAV may crash on a broken file)."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "vsr.lab.live_fuzz", "--probe", str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": "probe timed out"}
    try:
        out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return out
    except (ValueError, IndexError):
        return {"error": f"probe failed (exit {proc.returncode}): {proc.stderr.strip()[-200:]}"}


def collapsed(times: Sequence[float], run: int = 10, within: float = 0.002) -> bool:
    """Whether `run` consecutive frames lie within `within` seconds (a timeline packed into
    ticks: what repairing a jumped clock frame by frame gave)."""
    return any(times[i + run - 1] - times[i] < within for i in range(len(times) - run + 1))


def run_scenario(
    sc: Scenario, clips: Clips, work: Path, model: Path | None, extra: Sequence[str] = ()
) -> Result:
    """Run one scenario end to end and judge it."""
    folder = work / "out" / sc.slug
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port(sc.proto)
    p = plan(sc, clips, port)
    out = folder / f"rec{p.output}"
    url = f"udp://127.0.0.1:{port}" if sc.proto == "udp" else f"tcp://127.0.0.1:{port}?listen=1"
    cmd = [
        sys.executable,
        "-m",
        "vsr",
        "live",
        url,
        str(out),
        "-y",
        "--stats",
        "json",
        "--duration",
        str(p.duration),
        "--stall-timeout",
        str(STALL),
        "--reconnect",
        str(p.reconnect),
        *(["--model", str(model)] if model else []),
        *extra,
    ]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set() and proc.poll() is None:
            peak[0] = max(peak[0], _rss_mib(proc.pid))
            stop.wait(0.25)

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    sampler.start()
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(proc.stderr or []), daemon=True)
    reader.start()
    sent = Sent()
    deadline = time.monotonic() + 60
    while not _listening(sc.proto, port) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if proc.poll() is None:
        try:
            sent = send(p.parts, p.wire)
        except OSError as exc:  # TCP: vsr never accepted; judged by what vsr did
            stderr.append(f"[sender] {exc}\n")
    code: int | None
    try:
        code = proc.wait(timeout=p.duration + 45)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        code = None
    stop.set()
    sampler.join()
    reader.join(5)
    err = "".join(stderr)
    seconds = time.monotonic() - t0
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith('{"event": "progress"')]
    done = next((json.loads(ln) for ln in reversed(lines) if ln.startswith('{"event": "done"')), None)
    r = Result(
        sc.name,
        sc.proto,
        sc.kind,
        "ok",
        code,
        p.expected_exit,
        round(seconds, 2),
        last_stderr=next((ln for ln in reversed(lines) if not ln.startswith("{")), ""),
        ffmpeg_message="Immediate exit requested" in err,
        frames_sent=sent.frames,
        rss_mib=round(peak[0], 1),
        lost=sent.lost,
        corrupted=sent.corrupted,
    )
    if done is not None:
        r.frames_in = int(done.get("frames_in") or 0)
        r.discontinuities = int(done.get("discontinuities") or 0)
        r.reconnects = int(done.get("reconnects") or 0)
        r.size_changes = int(done.get("size_changes") or 0)
        r.damage = int(done.get("decode_errors") or 0) + int(done.get("corrupt_frames") or 0)
        r.overrun = round(max(0.0, float(done["seconds"]) - p.duration), 2)
    if code is None:
        r.status = "hang"
    elif "Traceback" in err:
        r.status = "traceback"
    elif code < 0 or done is None or code not in (0, 1):
        r.status = "crash"
    elif code != p.expected_exit:
        r.status = "wrong_exit"
    if r.status in ("ok", "wrong_exit"):
        got: Any = _probe(out) if out.exists() else {"error": "no recording"}
        times: list[float] = [float(t) for t in got.get("times") or []]
        if "error" in got or not times:
            r.status = "bad_output"
            r.last_stderr = str(got.get("error", "no frames in the recording"))
        else:
            r.frames_out = len(times)
            r.monotonic = all(b > a for a, b in itertools.pairwise(times))
            r.collapsed = collapsed(times)
            first = {str(k): float(v) for k, v in (got.get("first") or {}).items()}
            if "video" in first and "audio" in first:
                r.av_gap = round(abs(first["video"] - first["audio"]), 3)
    return r


def run_all(
    scenarios: Sequence[Scenario],
    work: Path,
    jobs: int = 2,
    real_model: bool = False,
    on_result: Callable[[Result], None] | None = None,
    extra: Sequence[str] = (),
    clips: Sequence[Path] | None = None,
) -> list[Result]:
    """Run every scenario (`jobs` at a time), in order of the list."""
    work.mkdir(parents=True, exist_ok=True)
    prepared = Clips(work / "clips", clips)
    model = None if real_model else identity_model(work)

    def one(sc: Scenario) -> Result:
        result = run_scenario(sc, prepared, work, model, extra)
        if on_result:
            on_result(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, scenarios))


@dataclass
class Summary:
    """Per-kind counts of a corpus run: the README table's rows."""

    rows: list[list[str]] = field(default_factory=list)
    met: bool = True


def summarize(results: Sequence[Result]) -> Summary:
    """The table (per transport and kind, then the total) and whether the bars are met:
    0 hangs, crashes, tracebacks, unplayable recordings, wrong exits, FFmpeg messages,
    non-monotonic or collapsed timelines; A/V start gap <= AV_GAP; RSS <= RSS_MIB."""

    def row(label: str, rs: Sequence[Result]) -> list[str]:
        gaps = [r.av_gap for r in rs if r.av_gap is not None]
        sent = sum(r.frames_sent for r in rs)
        return [
            label,
            str(len(rs)),
            *(str(sum(r.status == s for r in rs)) for s in STATUSES),
            str(sum(not r.monotonic or r.collapsed for r in rs)),
            str(sum(r.ffmpeg_message for r in rs)),
            f"{max(gaps):.3f}" if gaps else "-",
            f"{100 * sum(r.frames_out for r in rs) / sent:.0f}%" if sent else "-",
            f"{max((r.rss_mib for r in rs), default=0):.0f}",
            f"{max((r.overrun for r in rs), default=0):.1f}",
            str(sum(r.discontinuities for r in rs)),
            str(sum(r.reconnects for r in rs)),
            str(sum(r.damage for r in rs)),
        ]

    s = Summary()
    groups: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.proto, r.kind), []).append(r)
    for (proto, kind), rs in groups.items():
        s.rows.append(row(f"{proto} {kind}", rs))
    s.rows.append(row("**total**", results))
    s.met = all(r.clean for r in results)
    return s


COLUMNS = [
    "scenario",
    "runs",
    *STATUSES,
    "bad timeline",
    "FFmpeg text",
    "max A/V gap s",
    "frames out / sent",
    "max RSS MiB",
    "max overrun s",
    "discontinuities",
    "reconnects",
    "damage counted",
]


def table(results: Sequence[Result]) -> tuple[str, bool]:
    """The markdown table, the non-clean runs, and whether the bars are met."""
    s = summarize(results)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---" * len(COLUMNS) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in s.rows]
    bad = [r for r in results if not r.clean]
    if bad:
        lines += ["", "Non-clean runs:", ""]
        for r in bad:
            why = (
                [r.status]
                + (["non-monotonic"] if not r.monotonic else [])
                + (["collapsed"] if r.collapsed else [])
                + (["FFmpeg text"] if r.ffmpeg_message else [])
                + ([f"A/V gap {r.av_gap}"] if r.av_gap is not None and r.av_gap > AV_GAP else [])
                + ([f"RSS {r.rss_mib} MiB"] if r.rss_mib > RSS_MIB else [])
            )
            lines.append(
                f"- `{r.name}`: {', '.join(why)}, exit {r.exit_code} (expected "
                f"{r.expected_exit}): {r.last_stderr}"
            )
    lines += [
        "",
        (
            f"bars {'met' if s.met else 'NOT met'}: 0 hangs, crashes, tracebacks, bad "
            f"outputs, wrong exits, FFmpeg messages, bad timelines; A/V start gap <= "
            f"{AV_GAP}s; RSS <= {RSS_MIB} MiB"
        ),
    ]
    return "\n".join(lines), s.met


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--probe":
        print(json.dumps(probe(Path(sys.argv[2]))))
        raise SystemExit(0)
    raise SystemExit(
        "usage: python -m vsr.lab.live_fuzz --probe FILE (the corpus: scripts/media/live_fuzz.py)"
    )
