#!/usr/bin/env python3
"""Extract still frames from videos into a folder of PNGs, for `scripts/models/eval.py --sets DIR`:
natural images the models never saw, unlike Set5/Set14 (which every SR paper tunes for).

    python scripts/media/video_frames.py ../shared/videos/*.mp4 ../shared/videos/*.webm --out frames
    python scripts/models/eval.py --sets frames

Takes the frames at 1/4 and 3/4 of each clip, as stored (rotation metadata ignored).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
from PIL import Image


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.videos:
        with av.open(str(path)) as c:
            frames = list(c.decode(video=0))
        for k in (len(frames) // 4, 3 * len(frames) // 4):
            name = args.out / f"{path.stem.split('_')[1] if '_' in path.stem else path.stem}_{k:03d}.png"
            Image.fromarray(frames[k].to_ndarray(format="rgb24")).save(name)
            print(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
