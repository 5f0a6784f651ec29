import math
import signal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procrun.errors import ConfigError
from procrun.project.values import parse_duration, parse_signal, parse_size

WHERE = "procrun.toml:9: grace"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30.0),
        (0, 0.0),
        (1.5, 1.5),
        ("30", 30.0),
        ("2.5", 2.5),
        ("30s", 30.0),
        ("500ms", 0.5),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1h 30m", 5400.0),
        ("1.5s", 1.5),
        (".5s", 0.5),
        (" 20S ", 20.0),
        ("0s", 0.0),
    ],
)
def test_duration(value: object, seconds: float) -> None:
    assert parse_duration(value, WHERE) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("abc", "'abc'"),
        ("", "''"),
        ("-5s", "'-5s'"),
        ("5 seconds", "'5 seconds'"),
        ("1d", "'1d'"),
        ("s", "'s'"),
        ("1e3", "'1e3'"),
        (-1, "-1"),
        (math.inf, "inf"),
        (math.nan, "nan"),
        (10**400, "1" + "0" * 76 + "..."),
        (True, "True"),
        (None, "None"),
        ([30], "[30]"),
    ],
)
def test_invalid_duration(value: object, shown: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(value, WHERE)
    assert str(info.value) == (
        f"{WHERE}: invalid duration {shown}: "
        'use seconds (30) or a string like "30s", "500ms", "10m"'
    )


def test_duration_too_large_for_a_float() -> None:
    with pytest.raises(ConfigError, match="invalid duration"):
        parse_duration("9" * 400 + "h", WHERE)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (0, 0),
        (1048576, 1048576),
        ("1024", 1024),
        ("10B", 10),
        ("100k", 100_000),
        ("100K", 100_000),
        ("1KB", 1000),
        ("1KiB", 1024),
        ("400MB", 400_000_000),
        ("400mb", 400_000_000),
        ("512MiB", 512 * 1024**2),
        ("1GB", 10**9),
        ("1G", 10**9),
        ("2GiB", 2 * 1024**3),
        ("1TB", 10**12),
        ("1.1GB", 1_100_000_000),
        ("0.5KiB", 512),
        (".5k", 500),
        ("1.MiB", 1024**2),
        ("1.0000001KiB", 1024),  # fractional bytes round down
        (" 1 MB ", 10**6),
    ],
)
def test_size(value: object, size: int) -> None:
    assert parse_size(value, "max_memory") == size


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("lots", "'lots'"),
        ("1XB", "'1XB'"),
        ("-1MB", "'-1MB'"),
        (-1, "-1"),
        (1.5, "1.5"),
        (False, "False"),
    ],
)
def test_invalid_size(value: object, shown: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_size(value, "procrun.toml:4: max_memory")
    assert str(info.value) == (
        f"procrun.toml:4: max_memory: invalid size {shown}: use bytes (1048576) or a string like "
        '"400MB", "512MiB", "1GB" (KB/MB/GB count in 1000s, KiB/MiB/GiB in 1024s)'
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("TERM", signal.SIGTERM),
        ("SIGTERM", signal.SIGTERM),
        ("term", signal.SIGTERM),
        ("sigquit", signal.SIGQUIT),
        (" INT ", signal.SIGINT),
        (15, signal.SIGTERM),
        ("3", signal.SIGQUIT),
        ("USR1", signal.SIGUSR1),
        ("IOT", signal.SIGABRT),
    ],
)
def test_signal(value: object, expected: signal.Signals) -> None:
    assert parse_signal(value, "stop_signal") is expected


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("TRM", "'TRM'"),
        ("SIG", "'SIG'"),
        ("SIG_DFL", "'SIG_DFL'"),
        (0, "0"),
        (999, "999"),
        ("9999", "'9999'"),
        (True, "True"),
        (1.0, "1.0"),
    ],
)
def test_invalid_signal(value: object, shown: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_signal(value, "procrun.toml:3: stop_signal")
    assert str(info.value) == (
        f"procrun.toml:3: stop_signal: unknown signal {shown}: use a name like TERM, INT, QUIT, "
        "HUP, USR1, USR2 (with or without SIG) or a number"
    )


_ANY_VALUE = st.one_of(
    st.text(),
    st.from_regex(r"\s*[0-9.]{0,6}\s*[a-zA-Z]{0,4}([0-9.]{0,3}[a-zA-Z]{0,3})?\s*", fullmatch=True),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(_ANY_VALUE)
def test_duration_returns_a_finite_non_negative_float_or_fails_cleanly(value: object) -> None:
    try:
        seconds = parse_duration(value, WHERE)
    except ConfigError as exc:
        message = str(exc)
    else:
        assert isinstance(seconds, float)
        assert math.isfinite(seconds)
        assert seconds >= 0
        return
    assert message.startswith(f"{WHERE}: invalid duration ")


@settings(max_examples=200, deadline=None)
@given(_ANY_VALUE)
def test_size_returns_non_negative_bytes_or_fails_cleanly(value: object) -> None:
    try:
        size = parse_size(value, WHERE)
    except ConfigError as exc:
        message = str(exc)
    else:
        assert type(size) is int
        assert size >= 0
        return
    assert message.startswith(f"{WHERE}: invalid size ")


@settings(max_examples=200, deadline=None)
@given(st.one_of(_ANY_VALUE, st.sampled_from([s.name for s in signal.Signals])))
def test_signal_returns_a_signal_or_fails_cleanly(value: object) -> None:
    try:
        result = parse_signal(value, WHERE)
    except ConfigError as exc:
        message = str(exc)
    else:
        assert isinstance(result, signal.Signals)
        return
    assert message.startswith(f"{WHERE}: unknown signal ")
