"""Fuzz `vsr upscale` with a corpus of damaged and odd inputs; check that it fails well.

Builds the corpus of `vsr.lab.fuzz` (whose docstring says what is in it and how each run is
judged) from every clip in ../shared/videos (skipped when absent) and samples/sample.mp4,
runs every case through the CLI and prints a markdown table per mutation kind, the non-clean
cases and whether the bars are met: 0 hangs, 0 crashes, 0 tracebacks, 0 bad outputs, 0
leftovers, >= 95 % of recoverable inputs upscaled. Exit status 0 when met, 1 otherwise.

    .venv/bin/python scripts/media/fuzz.py --jobs 2 --json /tmp/fuzz.json     # ~300 cases
    .venv/bin/python scripts/media/fuzz.py --cases 'bear.*flip' --work /tmp/fz  # a few, kept
    .venv/bin/python scripts/media/fuzz.py --jobs 2 --extra='--segments 3 --executor local'  # scale-out
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from vsr.lab.fuzz import KINDS, STATUSES, Result, build_cases, run_all
from vsr.lab.tolerant_decode import tolerant_decode


def non_clean(r: Result) -> bool:
    return (
        r.status not in ("upscaled", "clean_error")
        or bool(r.leftover)
        or (r.recoverable and r.status != "upscaled")
    )


def report(results: Sequence[Result]) -> tuple[str, bool]:
    """The markdown table and the list of non-clean cases; and whether the bars are met."""
    cols = [
        "cases",
        "upscaled",
        "clean error",
        "hang",
        "crash",
        "traceback",
        "leftover",
        "recoverable",
        "recoverable upscaled %",
        "bad output",
        "frames lost",
    ]

    def row(label: str, rs: Sequence[Result]) -> list[str]:
        rec = [r for r in rs if r.recoverable]
        ok = sum(r.status == "upscaled" for r in rec)
        pct = f"{100 * ok / len(rec):.1f}" if rec else "-"
        counts = [
            len(rs),
            *(sum(r.status == s for r in rs) for s in STATUSES[:5]),
            sum(bool(r.leftover) for r in rs),
            len(rec),
        ]
        extra = [sum(r.status == "bad_output" for r in rs), sum(r.frames_lost for r in rs)]
        return [label, *map(str, counts), pct, *map(str, extra)]

    rows = [row(k, [r for r in results if r.kind == k]) for k in KINDS if any(r.kind == k for r in results)]
    rows.append(row("**total**", results))
    lines = ["| kind | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    bad = [r for r in results if non_clean(r)]
    if bad:
        lines += ["", "Non-clean cases:", ""]
        for r in bad:
            why = (
                r.status
                + (f" +leftover {r.leftover}" if r.leftover else "")
                + (
                    f" (recoverable: {r.input_frames} frames)"
                    if r.recoverable and r.status != "upscaled"
                    else ""
                )
            )
            lines.append(f"- `{r.name}`: {why}, exit {r.exit_code}: {r.last_stderr}")
    lost = [r for r in results if r.frames_lost]
    if lost:
        lines += ["", "Upscaled with frames lost (not a bar; output vs tolerant decode of the input):", ""]
        lines += [f"- `{r.name}`: {r.output_frames} of {r.input_frames} frames" for r in lost]
    rec = [r for r in results if r.recoverable]
    met = not any(
        r.status in ("hang", "crash", "traceback", "bad_output") or r.leftover for r in results
    ) and (not rec or sum(r.status == "upscaled" for r in rec) >= 0.95 * len(rec))
    lines += [
        "",
        (
            f"bars {'met' if met else 'NOT met'}: 0 hangs, crashes, tracebacks, bad outputs "
            "and leftovers; >= 95% of recoverable inputs upscaled"
        ),
    ]
    return "\n".join(lines), met


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    p.add_argument("--jobs", type=int, default=1, help="parallel cases (default 1)")
    p.add_argument("--timeout", type=float, default=60, help="seconds per case (default 60)")
    p.add_argument("--real-model", action="store_true", help="use the bundled x3 model, not x1")
    p.add_argument("--limit", type=int, help="run only the first N (matching) cases")
    p.add_argument("--cases", help="regular expression the case names must match")
    p.add_argument("--json", type=Path, help="write per-case results here")
    p.add_argument(
        "--extra",
        default="",
        help="more `vsr upscale` arguments for every case, "
        "e.g. --extra='--segments 3 --executor local' (the scale-out path)",
    )
    p.add_argument("--probe", help=argparse.SUPPRESS)  # internal: tolerant decode of one file
    args = p.parse_args(argv)
    if args.probe:
        print(tolerant_decode(args.probe))
        return 0
    cases = build_cases(args.seed)
    if args.cases:
        cases = [c for c in cases if re.search(args.cases, c.name)]
    cases = cases[: args.limit] if args.limit is not None else cases
    work = args.work or Path(tempfile.mkdtemp(prefix="vsr-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    done: list[Result] = []

    def progress(r: Result) -> None:
        done.append(r)
        print(f"[{len(done)}/{len(cases)}] {r.status:<11} {r.seconds:6.1f}s {r.name}", file=sys.stderr)

    t0 = time.monotonic()
    try:
        results = run_all(
            cases,
            work,
            args.seed,
            args.jobs,
            args.timeout,
            args.real_model,
            progress,
            shlex.split(args.extra),
        )
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    text, met = report(results)
    print(text)
    print(f"\n{len(results)} cases in {time.monotonic() - t0:.0f}s (seed {args.seed}, work {work})")
    if args.json:
        rows: list[dict[str, Any]] = [
            {**asdict(r), "recoverable": r.recoverable, "frames_lost": r.frames_lost} for r in results
        ]
        args.json.write_text(json.dumps({"seed": args.seed, "met": met, "cases": rows}, indent=1))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
