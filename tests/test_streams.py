"""Behaviour of stream mapping: subtitles, metadata and colour tags reach the output."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from helpers import FakeUpscaler, time_of

from vsr import ModelOptions, Pipeline, SinkOptions, SourceOptions
from vsr.lab.media import synth_video


def _with_subtitles(tmp_path: Path) -> Path:
    """An mkv with H.264 + AAC (language 'fra', title) + SRT subtitles (language 'eng')."""
    video = synth_video(tmp_path / "v.mkv", n=25)
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,100 --> 00:00:00,500\nhello\n\n2\n00:00:00,600 --> 00:00:00,900\nworld\n\n")
    out_path = tmp_path / "with_subs.mkv"
    with av.open(str(video)) as vin, av.open(str(srt)) as sin, av.open(str(out_path), "w") as out:
        out.metadata["title"] = "a title"
        mapping = {}
        for container in (vin, sin):
            for s in container.streams:
                o = out.add_stream_from_template(s)
                o.metadata["language"] = "eng" if s.type == "subtitle" else "fra"
                mapping[(id(container), s.index)] = o
        for container in (vin, sin):
            for packet in container.demux():
                if packet.size:
                    packet.stream = mapping[(id(container), packet.stream.index)]
                    out.mux(packet)
    return out_path


def _run(src: Path, dst: Path) -> None:
    Pipeline(
        SourceOptions(str(src)),
        ModelOptions(),
        SinkOptions(str(dst), preset="ultrafast"),
        upscaler=FakeUpscaler(2),
    ).run()


def test_subtitles_are_copied_into_matroska_with_language_and_title(tmp_path: Path) -> None:
    """An mkv output keeps the subtitle packets byte for byte, and the tags."""
    src = _with_subtitles(tmp_path)
    dst = tmp_path / "out.mkv"
    _run(src, dst)
    with av.open(str(dst)) as c:
        kinds = [(s.type, s.codec_context.name, s.metadata.get("language")) for s in c.streams]
        assert kinds == [
            ("video", "h264", "fra"),
            ("audio", "aac", "fra"),
            ("subtitle", "subrip", "eng"),
        ] or kinds == [("video", "h264", "fra"), ("audio", "aac", "fra"), ("subtitle", "srt", "eng")]
        assert c.metadata.get("title") == "a title"
        texts = [bytes(p) for p in c.demux(subtitles=0) if p.size]
    assert texts == [b"hello", b"world"]


def test_subtitles_mp4_cannot_hold_are_dropped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """MP4 cannot take SRT: the run succeeds, the stream is dropped and a warning says so."""
    src = _with_subtitles(tmp_path)
    dst = tmp_path / "out.mp4"
    with caplog.at_level("WARNING", logger="vsr"):
        _run(src, dst)
    with av.open(str(dst)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
    assert any("subtitle stream" in r.message and "dropped" in r.message for r in caplog.records)


def test_colour_tags_are_carried_over(tmp_path: Path) -> None:
    """BT.709 primaries/transfer/matrix and limited range on the input are tagged on the output."""
    src = tmp_path / "bt709.mp4"
    synth_video(src, n=5, audio=None, bt709=True)
    with av.open(str(src)) as c:
        f = next(c.decode(video=0))
        assert int(f.colorspace) == 1  # the input really is tagged BT.709
    dst = tmp_path / "out.mp4"
    _run(src, dst)
    with av.open(str(dst)) as c:
        f = next(c.decode(video=0))
        assert (int(f.colorspace), int(f.color_primaries), int(f.color_trc)) == (1, 1, 1)
        assert int(f.color_range) in (0, 1)


def test_a_trim_keeps_the_subtitles_inside_it_moved_with_the_video(tmp_path: Path) -> None:
    """--start 0.55: the subtitle shown from 0.6 s stays, 0.55 s earlier; the one at 0.1 s goes."""
    src = _with_subtitles(tmp_path)
    dst = tmp_path / "out.mkv"
    Pipeline(
        SourceOptions(str(src), start=0.55),
        ModelOptions(),
        SinkOptions(str(dst), preset="ultrafast"),
        upscaler=FakeUpscaler(2),
    ).run()
    with av.open(str(dst)) as c:
        subs = [(bytes(p), float(time_of(p))) for p in c.demux(subtitles=0) if p.size]
    assert [data for data, _ in subs] == [b"world"] and subs[0][1] == pytest.approx(0.05, abs=1e-3), subs
