"""The live preview's desktop window (main thread): OpenCV shows the preview's newest frame.

The window lives in the main thread (GUI toolkits insist), fed from `PreviewServer.latest()`
between progress snapshots. With opencv-python-headless there is no GUI: the HTTP preview is
the only one, and that is said once at debug level.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TypeVar

from ..pipeline.preview import PreviewServer

log = logging.getLogger(__name__)

T = TypeVar("T")


def with_window(snapshots: Iterator[T], preview: PreviewServer) -> Iterator[T]:
    """`snapshots` passed through, showing the preview in a window between them when
    OpenCV was built with a GUI."""
    import cv2

    try:
        cv2.namedWindow("vsr live", cv2.WINDOW_NORMAL)
    except cv2.error:
        log.debug("OpenCV has no GUI here: preview over HTTP only (%s)", preview.url)
        yield from snapshots
        return
    try:
        for snap in snapshots:
            frame = preview.latest()
            if frame is not None:
                cv2.imshow("vsr live", frame)
            cv2.waitKey(1)
            yield snap
    finally:
        cv2.destroyAllWindows()
