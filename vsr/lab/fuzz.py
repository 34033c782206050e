"""The fuzz corpus: damaged and odd inputs for `vsr upscale`, and how a run of each is judged.

Why: real files arrive truncated (interrupted downloads), bit-rotted, spliced or not media at
all. Whatever the input, `vsr upscale` must either produce a decodable output or exit 1/2 with
a one-line `vsr: ...` message: never hang, crash, print a traceback, or leave a partial file.
And an input that FFmpeg can still decode a frame from should be upscaled, not refused.

How: from every clip in ../shared/videos (skipped when absent) and samples/sample.mp4, build a
deterministic corpus (seed `--seed`) of mutations, each named so it can be rebuilt by hand:
`CLIP~KIND@OFFSET+LENGTH`:

    truncate_header / truncate_mid / truncate_end   file cut at OFFSET (LENGTH 0)
    flip_header / flip_payload   LENGTH bytes from OFFSET XORed with non-zero bytes drawn from
                                 random.Random(name) (header: the first 4 KiB)
    zero      LENGTH bytes from OFFSET set to 0
    dup       bytes [OFFSET, OFFSET+LENGTH) repeated right after themselves
    remove    bytes [OFFSET, OFFSET+LENGTH) cut out
    intact    the clip itself (baseline)

plus generated edge cases (`edge~NAME`): empty file, random bytes, text files, audio only, one
frame, 2x2 video, 1x1 image, and Y4M headers declaring 65536x65536 (beyond FFmpeg's limit) and
16000x16000 (within it) over 4 KiB of data. Each case runs as
`python -m vsr upscale CASE OUT --preset ultrafast --progress none -y --model x1.onnx` in a
subprocess of its own process group (killed on `--timeout`). The x1 model is one ONNX Identity
node, so the run costs decoding and encoding only (`--real-model`: the bundled x3 instead).

A case is "recoverable" when a tolerant PyAV decode (`vsr.lab.tolerant_decode`, in a process
of its own) yields at least one frame. The bars (scripts/media/fuzz.py reports them):
0 hangs, 0 crashes, 0 tracebacks, 0 bad outputs, 0 leftovers, >= 95 % of recoverable inputs
upscaled. Also reported, not a bar: "frames lost", runs that succeeded with fewer frames than
the tolerant decode got from the same input.

Shared by scripts/media/fuzz.py (the whole corpus) and tests/test_fuzz_sample.py (a fixed
sample of it). Cases run in a thread pool, each in a subprocess.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..paths import ROOT, SAMPLE, SHARED_VIDEOS
from . import tolerant_decode
from .media import write_audio_only

HEADER = 4096
KINDS = (
    "truncate_header",
    "truncate_mid",
    "truncate_end",
    "flip_header",
    "flip_payload",
    "zero",
    "dup",
    "remove",
    "intact",
    "edge",
)
EDGES = (
    "zero_bytes",
    "random_bytes",
    "text_txt",
    "text_mp4",
    "audio_only",
    "one_frame",
    "tiny_2x2",
    "pixel_1x1",
    "huge_y4m",
    "big_y4m",
)
EDGE_FILES = {
    "zero_bytes": "empty.mp4",
    "random_bytes": "random.mp4",
    "text_txt": "notes.txt",
    "text_mp4": "notes.mp4",
    "audio_only": "audio_only.m4a",
    "one_frame": "one_frame.mp4",
    "tiny_2x2": "tiny_2x2.mp4",
    "pixel_1x1": "pixel_1x1.png",
    "huge_y4m": "huge.y4m",
    "big_y4m": "big.y4m",
}
#: ONNX Identity model, [N,1,H,W] float32 -> same: what `identity_model` builds with onnx.helper,
#: used as is where the onnx package is not installed (it is only in the `train` extra).
IDENTITY_ONNX = bytes.fromhex(
    "0808120466757a7a3a680a190a05696e70757412066f757470757422084964656e74697479120278315a220a05696e70"
    "757412190a17080112130a0312014e0a0208010a031201480a0312015762230a066f757470757412190a17080112130a"
    "0312014e0a0208010a031201480a0312015742040a00100d"
)
STATUSES = ("upscaled", "clean_error", "hang", "crash", "traceback", "bad_output")


@dataclass(frozen=True)
class Case:
    """One corpus entry; `name` alone is enough to rebuild it from its clip."""

    clip: str  # file name of the source clip, or "edge"
    kind: str
    offset: int = 0
    length: int = 0
    edge: str = ""

    @property
    def name(self) -> str:
        if self.kind == "edge":
            return f"edge~{self.edge}"
        return f"{self.clip}~{self.kind}@{self.offset}+{self.length}"

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.+-]", "_", self.name.replace("~", "__").replace("@", "_"))


@dataclass
class Result:
    name: str
    kind: str
    status: str
    exit_code: int | None
    seconds: float
    last_stderr: str
    leftover: list[str] = field(default_factory=list)
    input_frames: int = 0  # tolerant decode of the input (-1: the probe itself failed)
    output_frames: int = 0

    @property
    def recoverable(self) -> bool:
        return self.input_frames >= 1

    @property
    def frames_lost(self) -> bool:
        """Upscaled, but with fewer frames than the tolerant decode got from the input."""
        return self.status == "upscaled" and self.output_frames < self.input_frames


def source_clips() -> list[Path]:
    """The real clips in ../shared/videos (if present) and the project's own sample."""
    found = (
        sorted(p for p in SHARED_VIDEOS.glob("*") if p.is_file() and p.suffix.lower() not in {".md", ".txt"})
        if SHARED_VIDEOS.is_dir()
        else []
    )
    return [*found, SAMPLE] if SAMPLE.exists() else found


def clip_cases(clip: Path, seed: int) -> list[Case]:
    """42 mutations of one clip plus the intact clip; depends only on seed, name and size."""
    size = clip.stat().st_size
    rng = random.Random(f"{seed}:{clip.name}")
    head = min(HEADER, size - 1)

    def span(lo: int, hi: int) -> int:  # log-uniform length in [lo, hi]
        return round(2 ** rng.uniform(lo.bit_length() - 1, max(lo, hi).bit_length() - 1))

    def ranged(kind: str, n: int, lo: int, hi: int) -> list[Case]:
        out = []
        for _ in range(n):
            length = min(span(lo, hi), max(1, size // 4))
            out.append(Case(clip.name, kind, rng.randrange(0, size - length), length))
        return out

    cases = [Case(clip.name, "intact")]
    cases += [Case(clip.name, "truncate_header", rng.randrange(1, head)) for _ in range(3)]
    cases += [Case(clip.name, "truncate_mid", rng.randrange(head, int(size * 0.95))) for _ in range(5)]
    cases += [Case(clip.name, "truncate_end", rng.randrange(int(size * 0.95), size)) for _ in range(4)]
    for _ in range(6):
        n = rng.randint(1, 8)
        cases.append(Case(clip.name, "flip_header", rng.randrange(0, head - n), n))
    for _ in range(6):
        n = rng.randint(1, 16)
        cases.append(Case(clip.name, "flip_payload", rng.randrange(head, size - n), n))
    cases += ranged("zero", 6, 16, 65536)
    cases += ranged("dup", 6, 16, 32768)
    cases += ranged("remove", 6, 16, 32768)
    return cases


def build_cases(seed: int = 0, clips: Sequence[Path] | None = None) -> list[Case]:
    """The whole corpus, in a fixed order: per clip, then the edge cases."""
    cases = [c for clip in (source_clips() if clips is None else clips) for c in clip_cases(clip, seed)]
    return cases + [Case("edge", "edge", edge=e) for e in EDGES]


def mutate(data: bytes, case: Case) -> bytes:
    """Apply `case`'s mutation to the clip's bytes."""
    off, n = case.offset, case.length
    if case.kind == "intact":
        return data
    if case.kind.startswith("truncate"):
        return data[:off]
    if case.kind.startswith("flip"):
        rng = random.Random(case.name)
        noise = bytes(rng.randint(1, 255) for _ in range(n))
        return (
            data[:off]
            + bytes(a ^ b for a, b in zip(data[off : off + n], noise, strict=False))
            + data[off + n :]
        )
    if case.kind == "zero":
        return data[:off] + bytes(len(data[off : off + n])) + data[off + n :]
    if case.kind == "dup":
        return data[: off + n] + data[off : off + n] + data[off + n :]
    if case.kind == "remove":
        return data[:off] + data[off + n :]
    raise ValueError(f"unknown mutation {case.kind!r}")


def materialize(case: Case, folder: Path, clips: dict[str, Path], seed: int = 0) -> Path:
    """Write the case's input file under `folder` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    if case.kind == "edge":
        path = folder / f"{case.slug}__{EDGE_FILES[case.edge]}"
        _write_edge(case.edge, path, seed)
        return path
    path = folder / f"{case.slug}{Path(case.clip).suffix}"
    path.write_bytes(mutate(clips[case.clip].read_bytes(), case))
    return path


def _write_edge(edge: str, path: Path, seed: int) -> None:
    import av
    import numpy as np

    text = b"vsr fuzz corpus: this is a plain text file, not a video.\n" * 40
    raw = {
        "zero_bytes": b"",
        "text_txt": text,
        "text_mp4": text,
        "random_bytes": random.Random(f"{seed}:random").randbytes(65536),
        "huge_y4m": b"YUV4MPEG2 W65536 H65536 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + bytes(4096),
        "big_y4m": b"YUV4MPEG2 W16000 H16000 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + bytes(4096),
    }
    if edge in raw:
        path.write_bytes(raw[edge])
        return
    if edge == "audio_only":
        write_audio_only(path)
        return
    w, h, n = {"one_frame": (64, 48, 1), "tiny_2x2": (2, 2, 5), "pixel_1x1": (1, 1, 1)}[edge]
    fmt = "image2" if path.suffix == ".png" else None
    with av.open(str(path), "w", format=fmt) as out:
        st = out.add_stream("png" if fmt else "libx264", rate=None if fmt else 25)
        st.width, st.height, st.pix_fmt = w, h, "rgb24" if fmt else "yuv420p"
        if fmt:
            out.options["update"] = "1"
        for i in range(n):
            img = np.full((h, w, 3), 40 + 50 * i, np.uint8)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = i
            out.mux(st.encode(vf))
        out.mux(st.encode(None))


def identity_model(folder: Path) -> Path:
    """An x1 ONNX model (one Identity node, dynamic N/H/W) saved as `folder/x1.onnx`."""
    path = folder / "x1.onnx"
    try:
        from onnx import TensorProto, helper, save
    except ImportError:
        path.write_bytes(IDENTITY_ONNX)
        return path
    dims: list[str | int] = ["N", 1, "H", "W"]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])],
        "x1",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, dims)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="fuzz")
    model.ir_version = 8
    save(model, str(path))
    return path


def _run(cmd: list[str], timeout: float) -> tuple[int | None, str, str, float]:
    """Run in a new process group: (exit code, None on timeout; stdout; stderr; seconds)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        code = None
    return code, out.decode(errors="replace"), err.decode(errors="replace"), time.monotonic() - t0


def probe_frames(*paths: Path, timeout: float = 30) -> list[int]:
    """`tolerant_decode` of each file in one subprocess (PyAV may crash on damaged data);
    -1 for a file whose probe failed.

    The module runs by its path, so the probe imports PyAV alone, not vsr. One process for
    a case's input and output: starting one is most of a probe's time (0.2 s on two cores).
    A process that fails on one file is retried for each file that got no count."""
    code, out, _, _ = _run(
        [sys.executable, str(Path(tolerant_decode.__file__).resolve()), *map(str, paths)], timeout
    )
    counts = [int(x) for x in out.split() if x.isdigit()]
    if code == 0 and len(counts) == len(paths):
        return counts
    if len(paths) == 1:
        return [-1]
    return counts + [probe_frames(p, timeout=timeout)[0] for p in paths[len(counts) :]]


def run_case(
    case: Case, src: Path, out_dir: Path, model: Path | None, timeout: float, extra: Sequence[str] = ()
) -> Result:
    """Upscale one case with the CLI and classify what happened."""
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    out = out_dir / "out.mp4"
    cmd = [
        sys.executable,
        "-m",
        "vsr",
        "upscale",
        str(src),
        str(out),
        "--preset",
        "ultrafast",
        "--progress",
        "none",
        "-y",
        *(["--model", str(model)] if model else []),
        *extra,
    ]
    code, _, err, seconds = _run(cmd, timeout)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if code == 0 and out.exists():
        input_frames, output_frames = probe_frames(src, out)
    else:
        input_frames, output_frames = probe_frames(src)[0], 0
    if code is None:
        status = "hang"
    elif "Traceback" in err:
        status = "traceback"
    elif code == 0:
        status = "upscaled" if output_frames >= 1 else "bad_output"
    elif code in (1, 2) and any(ln.startswith("vsr: ") for ln in lines):
        status = "clean_error"
    else:
        status = "crash"  # a signal, another exit code, or an error without a 'vsr:' line
    keep = {"out.mp4"} if code == 0 else set()
    if code == 1 and (out_dir / "out.mp4.vsr-work" / "manifest.json").exists():
        keep.add("out.mp4.vsr-work")  # scale-out: finished segments kept for --resume, on purpose
    # After a timeout vsr was SIGKILLed and could not clean up: not counted as its leftover.
    leftover = sorted(p.name for p in out_dir.iterdir() if p.name not in keep) if code is not None else []
    return Result(
        case.name,
        case.kind,
        status,
        code,
        round(seconds, 2),
        lines[-1] if lines else "",
        leftover,
        input_frames,
        output_frames,
    )


def run_all(
    cases: Sequence[Case],
    work: Path,
    seed: int = 0,
    jobs: int = 1,
    timeout: float = 60,
    real_model: bool = False,
    on_result: Callable[[Result], None] | None = None,
    extra: Sequence[str] = (),
    clips: Sequence[Path] | None = None,
) -> list[Result]:
    """Build each case's input under `work/in`, run it (outputs under `work/out`), in order.
    `clips`: where the cases' source clips are (default: `source_clips()`)."""
    clips_by_name = {p.name: p for p in (source_clips() if clips is None else clips)}
    model = None if real_model else identity_model(work)

    def one(case: Case) -> Result:
        src = materialize(case, work / "in", clips_by_name, seed)
        result = run_case(case, src, work / "out" / case.slug, model, timeout, extra)
        if on_result:
            on_result(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, cases))
