"""Progress of waits: a live line where a person watches, nothing in logs and scripts."""

from __future__ import annotations

import io
import itertools

import pytest
from rich.console import Console

from slipway.core import progress
from slipway.core.waiting import wait_until_final


def test_a_wait_is_silent_where_nobody_watches(capsys: pytest.CaptureFixture[str]) -> None:
    states = itertools.chain(["queued", "running"], itertools.repeat("done"))
    assert (
        wait_until_final(
            lambda: next(states), lambda s: s, {"done"}, what="job j", timeout=5, interval=0
        )
        == "done"
    )
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_a_watched_wait_shows_what_it_waits_for_and_its_states(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(
        progress, "Console", lambda **_: Console(file=screen, force_terminal=True, width=120)
    )
    seen: list[str] = []
    states = itertools.chain(["queued", "running"], itertools.repeat("Succeeded"))

    def fetch() -> str:
        value = next(states)
        seen.append(value)
        return value

    wait_until_final(
        fetch, lambda s: s, {"Succeeded"}, what="job j", timeout=5, interval=0, progress=True
    )
    drawn = screen.getvalue()
    assert "waiting for job j" in drawn
    assert "Succeeded" in drawn  # the last state stays on screen
    assert seen == ["queued", "running", "Succeeded"]


def test_a_timeout_names_what_and_its_last_state() -> None:
    with pytest.raises(TimeoutError, match="job j still running after 0 s"):
        wait_until_final(
            lambda: "running", lambda s: s, {"done"}, what="job j", timeout=0, interval=0
        )


def test_should_show_follows_the_override_then_the_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert progress.should_show(True) and not progress.should_show(False)
    monkeypatch.setattr(progress, "in_notebook", lambda: False)
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: False)
    assert not progress.should_show(None)
    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    assert progress.should_show(None)
