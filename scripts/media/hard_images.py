"""Write the generated images that are hard on a quantized network (`vsr.lab.hard_images`:
text, line art, flat colour, contrast, dark) as PNGs into a folder.

    python scripts/media/hard_images.py OUT_DIR        # writes text.png, lineart.png, ...
"""

from __future__ import annotations

import sys
from pathlib import Path

from vsr.lab.hard_images import write_all

if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python scripts/media/hard_images.py OUT_DIR")
    for p in write_all(Path(sys.argv[1])):
        print(p)
