"""A fixed sample of the live fault corpus (vsr.lab.live_fuzz), run through the real CLI.

The whole corpus (264 scenarios, about half an hour on 2 cores) runs with
`python scripts/media/live_fuzz.py --jobs 2`; here one scenario of each main fault, on the test
pattern, all at once (about 13 s on 2 cores, three at a time took 19: the scenarios are real
time and mostly wait, and the runs use an identity model; all six passed three runs side by
side with three loaded `tests/test_live.py` runs).
"""

from __future__ import annotations

import pytest

from vsr.lab import live_fuzz

SAMPLE = [
    live_fuzz.Scenario("udp", "restart", "pattern"),
    live_fuzz.Scenario("udp", "corrupt", "pattern", 1),
    live_fuzz.Scenario("udp", "resize", "pattern"),
    live_fuzz.Scenario("tcp", "cut", "pattern"),
    live_fuzz.Scenario("tcp", "jump_back", "pattern"),
    live_fuzz.Scenario("udp", "gone", "pattern"),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, live_fuzz.Result]:
    work = tmp_path_factory.mktemp("live_fuzz")
    return {r.name: r for r in live_fuzz.run_all(SAMPLE, work, jobs=len(SAMPLE), clips=[])}


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SAMPLE, ids=[s.name for s in SAMPLE])
def test_live_fault_ends_as_expected_with_a_clean_recording(
    results: dict[str, live_fuzz.Result], scenario: live_fuzz.Scenario
) -> None:
    """A live stream with a fault (restart, damaged datagrams, size switch, cut connection,
    clock jump, source gone) ends with the expected exit status and no traceback or FFmpeg
    text, and leaves a recording that decodes, whose timeline increases without a collapsed
    run, whose audio starts with its video, and that holds no more frames than were sent."""
    r = results[scenario.name]
    assert r.clean and r.exit_code == r.expected_exit, r
    assert 0 < r.frames_out <= r.frames_sent, r
    if scenario.kind == "restart":
        assert r.discontinuities >= 1 and r.reconnects == 0, r
    if scenario.kind == "jump_back":
        assert r.discontinuities >= 1, r
    if scenario.kind == "resize":
        assert r.size_changes >= 1, r
    if scenario.kind == "cut":
        assert r.reconnects >= 1, r
    if scenario.kind == "gone":
        assert r.exit_code == 1 and "did not come back" in r.last_stderr, r
