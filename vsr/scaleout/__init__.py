"""Scale-out: one video file split at keyframes, its segments upscaled by many workers (threads
here, or actors on a Ray cluster), joined frame-exact, resumable after a crash.

    keyframes.py  where the file can be cut (packets only) and the segment plan
    manifest.py   the work directory's record of the job (atomic, checked on --resume)
    worker.py     one segment through the ordinary pipeline into an MP4 part
    executors.py  where segments run: LocalExecutor (threads) or RayExecutor (actors)
    join.py       verify the parts and remux them with the original's audio
    job.py        the driver that ties these together (ScaleOutJob)

Ray is optional (`pip install 'vsr[ray]'`) and imported only when a Ray executor starts.
"""

from __future__ import annotations

from .executors import Executor, LocalExecutor, RayExecutor
from .job import ScaleOutJob, ScaleOutOptions

__all__ = ["Executor", "LocalExecutor", "RayExecutor", "ScaleOutJob", "ScaleOutOptions"]
