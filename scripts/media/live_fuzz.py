#!/usr/bin/env python3
"""Run the live fault corpus (`vsr.lab.live_fuzz`) and print its table.

Every scenario streams a generated or real clip in real time over UDP or TCP on loopback to
`vsr live`, with a fault (restart, stall, clock jump or wrap, size switch, lost or damaged
datagrams, a cut connection, a source gone for good), then checks the process, the
recording's timeline, the A/V start and the memory. Exit status 0 when the bars are met.

    .venv/bin/python scripts/media/live_fuzz.py --jobs 2 --json /tmp/live_fuzz.json   # >= 200 runs
    .venv/bin/python scripts/media/live_fuzz.py --cases 'udp~restart' --work /tmp/lf    # a few, kept
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
from dataclasses import asdict
from pathlib import Path

from vsr.lab.live_fuzz import Result, build, run_all, table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--jobs", type=int, default=2, help="scenarios at a time (default 2)")
    p.add_argument("--minimum", type=int, default=200, help="at least this many scenarios (default 200)")
    p.add_argument("--cases", help="regular expression the scenario names must match")
    p.add_argument("--limit", type=int, help="run only the first N (matching) scenarios")
    p.add_argument("--work", type=Path, help="work folder (default: a temporary one, removed)")
    p.add_argument("--real-model", action="store_true", help="the bundled x3 model, not x1")
    p.add_argument("--extra", default="", help="more `vsr live` arguments for every run")
    p.add_argument("--json", type=Path, help="write per-scenario results here")
    args = p.parse_args(argv)
    scenarios = build(minimum=args.minimum)
    if args.cases:
        scenarios = [s for s in scenarios if re.search(args.cases, s.name)]
    scenarios = scenarios[: args.limit] if args.limit is not None else scenarios
    work = args.work or Path(tempfile.mkdtemp(prefix="vsr-live-fuzz-"))
    done: list[Result] = []

    def progress(r: Result) -> None:
        done.append(r)
        flag = "" if r.clean else "  <-- NOT CLEAN"
        print(
            f"[{len(done)}/{len(scenarios)}] {r.status:<10} exit {r.exit_code} {r.seconds:5.1f}s "
            f"out {r.frames_out}/{r.frames_sent} {r.name}{flag}",
            file=sys.stderr,
            flush=True,
        )

    t0 = time.monotonic()
    try:
        results = run_all(scenarios, work, args.jobs, args.real_model, progress, shlex.split(args.extra))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    text, met = table(results)
    print(text)
    print(f"\n{len(results)} scenarios in {time.monotonic() - t0:.0f}s ({args.jobs} at a time)")
    if args.json:
        args.json.write_text(
            json.dumps({"met": met, "runs": [asdict(r) | {"clean": r.clean} for r in results]}, indent=1)
        )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
