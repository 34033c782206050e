"""A fixed sample of the fuzz corpus of damaged inputs (vsr.lab.fuzz), run through the real CLI.

The full corpus (~300 cases, minutes) runs with `python scripts/media/fuzz.py --jobs 2`; here one
case of every mutation kind from the bundled sample and from the small odd-sized VP9 clip,
plus every generated edge case, run in parallel (about 28 cases, 10-20 s on 2 cores). The
second case of each kind (the same mutation at another offset) is left to the corpus, which
runs every offset: in the suite it cost about 20 CPU seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import GOP12

from vsr.lab import fuzz
from vsr.lab.media import synth_video
from vsr.paths import SAMPLE, SHARED_VIDEOS

SEED = 0
PER_KIND = 1
SMALL_SHARED_CLIP = SHARED_VIDEOS / "bear_161x121_odd_vp9.webm"


def _pick(clip: Path) -> list[fuzz.Case]:
    cases = fuzz.clip_cases(clip, SEED)
    return [c for kind in fuzz.KINDS for c in [c for c in cases if c.kind == kind][:PER_KIND]]


def _params() -> list[pytest.ParameterSet]:
    cases = _pick(SAMPLE) + [c for c in fuzz.build_cases(SEED, clips=[]) if c.kind == "edge"]
    params = [pytest.param(c, id=c.name) for c in cases]
    if SMALL_SHARED_CLIP.exists():
        params += [pytest.param(c, id=c.name) for c in _pick(SMALL_SHARED_CLIP)]
    else:
        params.append(
            pytest.param(
                None,
                id=SMALL_SHARED_CLIP.name,
                marks=pytest.mark.skip(reason=f"{SMALL_SHARED_CLIP} not present"),
            )
        )
    return params


PARAMS = _params()
CASES = [c for p in PARAMS if isinstance(c := p.values[0], fuzz.Case)]  # None: a skipped clip


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, fuzz.Result]:
    work = tmp_path_factory.mktemp("fuzz")
    return {r.name: r for r in fuzz.run_all(CASES, work, SEED, jobs=2, timeout=30)}


def _describe(r: fuzz.Result) -> str:
    return (
        f"{r.name}: {r.status}, exit {r.exit_code}, leftover {r.leftover}, input frames "
        f"{r.input_frames}, last stderr line: {r.last_stderr!r}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("case", PARAMS)
def test_damaged_input_is_upscaled_or_refused_with_one_line(
    results: dict[str, fuzz.Result], case: fuzz.Case
) -> None:
    """A damaged input is upscaled or refused with a 'vsr:' message and exit 1 or 2: it never
    hangs, crashes, prints a traceback or exits 0 without a decodable output."""
    r = results[case.name]
    assert r.status in ("upscaled", "clean_error"), _describe(r)


@pytest.mark.slow
@pytest.mark.parametrize("case", PARAMS)
def test_only_the_finished_output_is_left_in_the_output_folder(
    results: dict[str, fuzz.Result], case: fuzz.Case
) -> None:
    """After a run the output folder holds the finished output on success and nothing on
    failure: no hidden partial file, no half-written output."""
    r = results[case.name]
    assert not r.leftover, _describe(r)


@pytest.mark.slow
@pytest.mark.parametrize("case", PARAMS)
def test_input_with_a_decodable_frame_is_upscaled(results: dict[str, fuzz.Result], case: fuzz.Case) -> None:
    """An input from which a tolerant PyAV decode still gets a frame is upscaled, not refused."""
    r = results[case.name]
    assert not r.recoverable or r.status == "upscaled", _describe(r)


def test_corpus_is_reproducible_from_the_seed_and_names() -> None:
    """The same seed gives the same corpus, every name is unique and says clip, mutation,
    offset and length, and a mutation depends only on its case."""
    a, b = fuzz.build_cases(SEED), fuzz.build_cases(SEED)
    assert a == b and len({c.name for c in a}) == len(a)
    assert fuzz.build_cases(SEED + 1) != a
    data = SAMPLE.read_bytes()
    for case in _pick(SAMPLE):
        assert case.name == f"sample.mp4~{case.kind}@{case.offset}+{case.length}"
        assert fuzz.mutate(data, case) == fuzz.mutate(data, case)


def test_full_corpus_has_at_least_300_cases() -> None:
    """With the shared clips beside the sample, the corpus the README's table reports on
    has at least 300 cases."""
    if not SMALL_SHARED_CLIP.exists():
        pytest.skip(f"{SMALL_SHARED_CLIP} not present: the corpus is the bundled sample's alone")
    assert len(fuzz.build_cases(SEED)) >= 300


@pytest.mark.slow
def test_damaged_inputs_through_the_scale_out_path(tmp_path: Path) -> None:
    """One case of every mutation kind of a clip with a keyframe every 12 frames (so it
    really splits), through `--segments 3 --executor local`: upscaled or refused with one
    line, nothing left behind but a work directory kept on purpose for --resume."""
    clip = synth_video(tmp_path / "gop12.mp4", n=48, options=GOP12)
    cases = [
        next(c for c in fuzz.clip_cases(clip, SEED) if c.kind == kind)
        for kind in fuzz.KINDS
        if kind != "edge"
    ]
    (tmp_path / "work").mkdir()
    results = fuzz.run_all(
        cases,
        tmp_path / "work",
        SEED,
        jobs=2,
        timeout=60,
        extra=["--segments", "3", "--executor", "local"],
        clips=[clip],
    )
    for r in results:
        assert r.status in ("upscaled", "clean_error") and not r.leftover, _describe(r)
        assert not r.recoverable or r.status == "upscaled", _describe(r)


def test_one_probe_process_counts_several_files(tmp_path: Path) -> None:
    """A case's input and output are counted by one probe process, in order; a file PyAV
    cannot open counts 0."""
    assert fuzz.probe_frames(SAMPLE, tmp_path / "missing.mp4", SAMPLE) == [100, 0, 100]
