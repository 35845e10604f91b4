"""Durations as flow files and the CLI write them, in milliseconds."""

from __future__ import annotations

import datetime

import pytest

from baton._duration import to_millis


@pytest.mark.parametrize(
    "value, millis",
    [
        ("5m", 300_000),
        ("500ms", 500),
        ("1h30m", 5_400_000),
        ("1.5s", 1500),
        ("7d", 604_800_000),
        (" 2m 30s ", 150_000),
        (30, 30_000),
        (0.25, 250),
        (datetime.timedelta(minutes=2), 120_000),
        (None, 0),
    ],
)
def test_durations(value, millis):
    assert to_millis(value) == millis


@pytest.mark.parametrize("value", ["", "5", "5 minutes", "m5", "1x", "-5s"])
def test_malformed_durations_name_themselves(value):
    with pytest.raises(ValueError):
        to_millis(value)


def test_negative_numbers_and_booleans_are_refused():
    with pytest.raises(ValueError):
        to_millis(-1)
    with pytest.raises(TypeError):
        to_millis(True)
