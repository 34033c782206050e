"""Guard rails on output size: when an output is larger than 4K, and what it costs in memory.

Pure functions; the CLI logs their warning once per file before the work starts.
"""

from __future__ import annotations

#: The largest output vsr upscales without a warning: DCI 4K, either orientation.
LARGE_OUTPUT = (4096, 2160)

#: Measured peak resident memory of `vsr upscale` (libx264 medium, CPU, batch 1) for
#: 960x540, 1920x1080 and 3840x2160 outputs: 0.27, 0.65 and 1.42 GB; above 1080p it grows
#: by about 125 bytes per output pixel (the encoder's look-ahead, frames in flight) from
#: about 0.4 GB. Each further frame of a batch adds the model's float32 output and a queue
#: slot: about 24 bytes per output pixel.
BASE_BYTES = 400e6
BYTES_PER_PIXEL = 125
BYTES_PER_PIXEL_PER_BATCH_FRAME = 24


def memory_estimate(width: int, height: int, batch: int = 1) -> float:
    """Bytes of memory a run with this output size is expected to take at its peak."""
    return BASE_BYTES + width * height * (
        BYTES_PER_PIXEL + BYTES_PER_PIXEL_PER_BATCH_FRAME * (max(1, batch) - 1)
    )


def large_output_warning(width: int, height: int, scale: int, batch: int = 1) -> str | None:
    """A one-line warning when `scale` x (width x height) is larger than 4K, else None.

    Args:
        width, height: the input's frame size.
        scale: the model's scale.
        batch: frames per model call (0: auto, counted as 1).
    """
    out_w, out_h = width * scale, height * scale
    big, small = LARGE_OUTPUT
    if max(out_w, out_h) <= big and min(out_w, out_h) <= small:
        return None
    gb = memory_estimate(out_w, out_h, batch) / 1e9
    hint = f"; --scale 2 makes it {width * 2}x{height * 2}" if scale > 2 else ""
    return f"output {out_w}x{out_h} is larger than {big}x{small}: expect about {gb:.1f} GB of memory{hint}"
