"""The old name of `vsr.media.picture_metadata`, kept only for `vsr/lab/media.py`'s one
import (a file being changed on another branch): delete this module once that import reads
`from vsr.media.picture_metadata import set_stream_sar`. Nothing else may import it."""

from __future__ import annotations

from .picture_metadata import set_stream_sar

__all__ = ["set_stream_sar"]
