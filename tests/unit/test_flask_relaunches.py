"""Relaunches of the Flask monitor back off, and a burst of them is one flapping episode that
alerts once; the thresholds are settings with one home for their defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from adclick_airflow import relaunches, settings
from adclick_airflow.relaunches import RelaunchHistory, RelaunchPolicy

POLICY = RelaunchPolicy()  # the shipped defaults: more than 3 in 10 minutes


@pytest.fixture
def history(tmp_path: Path) -> RelaunchHistory:
    return RelaunchHistory(tmp_path / "relaunches.json", POLICY)


def test_seventeen_kills_in_ninety_seconds_alert_once(history: RelaunchHistory) -> None:
    opened = [history.record(now=1000.0 + 90 * i / 16).opened_episode for i in range(17)]

    assert opened == [False] * 3 + [True] + [False] * 13


def test_relaunches_back_off(history: RelaunchHistory) -> None:
    assert history.backoff(now=1000.0) == 0  # the first relaunch in the window: at once
    waits = []
    for _ in range(7):
        history.record(now=1000.0)
        waits.append(history.backoff(now=1000.0))

    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert history.backoff(now=1030.0) == 30.0  # counted from the last relaunch
    assert history.backoff(now=1000.0 + POLICY.window_s + 1) == 0  # a quiet window: at once


def test_a_new_episode_after_a_quiet_window_alerts_again(history: RelaunchHistory) -> None:
    first = [history.record(now=float(t)).opened_episode for t in range(0, 50, 10)]
    # The window passes with no more than three relaunches: the episode is over.
    calm = [history.record(now=float(t)) for t in (700, 1400)]
    second = [history.record(now=float(t)).opened_episode for t in range(1410, 1450, 10)]

    assert first == [False, False, False, True, False]
    assert all(r.flapping_since is None for r in calm)
    assert second == [False, False, True, False]


def test_four_relaunches_spread_over_more_than_the_window_are_not_flapping(
    history: RelaunchHistory,
) -> None:
    spaced = [history.record(now=t * 250.0) for t in range(8)]

    assert not any(r.opened_episode for r in spaced)
    assert max(r.in_window for r in spaced) == 3


def test_a_torn_history_file_starts_afresh(history: RelaunchHistory) -> None:
    history.path.write_text('{"relaunches": [1, 2')

    assert history.record(now=5.0).in_window == 1


VARIABLES = {
    "ADCLICK_FLASK_FLAPPING_RELAUNCHES": "flapping_relaunches",
    "ADCLICK_FLASK_FLAPPING_WINDOW_S": "window_s",
    "ADCLICK_FLASK_RELAUNCH_BACKOFF_S": "first_backoff_s",
    "ADCLICK_FLASK_RELAUNCH_MAX_BACKOFF_S": "max_backoff_s",
}


def test_settings_default_to_the_module_s_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)

    assert settings.relaunch_policy() == RelaunchPolicy(
        flapping_relaunches=relaunches.DEFAULT_FLAPPING_RELAUNCHES,
        window_s=relaunches.DEFAULT_WINDOW_S,
        first_backoff_s=relaunches.DEFAULT_FIRST_BACKOFF_S,
        max_backoff_s=relaunches.DEFAULT_MAX_BACKOFF_S,
    )
    assert (POLICY.flapping_relaunches, POLICY.window_s) == (3, 600.0)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in zip(VARIABLES, ("5", "120", "1", "30"), strict=True):
        monkeypatch.setenv(name, value)

    assert settings.relaunch_policy() == RelaunchPolicy(5, 120.0, 1.0, 30.0)


@pytest.mark.parametrize("name", VARIABLES)
def test_a_bad_setting_names_its_variable(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "often")

    with pytest.raises(ValueError, match=name):
        settings.relaunch_policy()
