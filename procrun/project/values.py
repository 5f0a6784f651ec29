"""Parsers for the scalar values people write in procrun.toml and on the command line.

Durations, sizes and signal names share one contract: accept the few obvious spellings, reject
everything else with a ConfigError that starts with `where` (e.g. `procrun.toml:9: grace`), quotes
the value and shows a spelling that works.
"""

from __future__ import annotations

import math
import re
import signal

from procrun.errors import ConfigError
from procrun.quoting import excerpt

_DURATION_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_DURATION_PART = re.compile(rf"\s*({_NUMBER})\s*(ms|s|m|h)", re.IGNORECASE)
_DURATION = re.compile(rf"(?:\s*{_NUMBER}\s*(?:ms|s|m|h))+\s*", re.IGNORECASE)
_PLAIN_NUMBER = re.compile(rf"\s*({_NUMBER})\s*")

# KB/MB/GB count in 1000s and KiB/MiB/GiB in 1024s, as Kubernetes reads "400M" and "400Mi". A lone
# k/M/G/T is decimal too, although Docker's `-m 512m` means MiB: users who want that write "512MiB".
_SIZE_UNIT_BYTES = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(rf"\s*({_NUMBER})\s*([a-z]*)\s*", re.IGNORECASE)


def _show(value: object) -> str:
    return f"'{excerpt(value)}'" if isinstance(value, str) else excerpt(repr(value))


def _duration_error(value: object, where: str) -> ConfigError:
    return ConfigError(
        f"{where}: invalid duration {_show(value)}: "
        'use seconds (30) or a string like "30s", "500ms", "10m"'
    )


def parse_duration(value: object, where: str) -> float:
    """Seconds from `30`, `1.5`, `"30"`, `"30s"`, `"500ms"`, `"10m"`, `"1h"` or `"1m30s"`.

    Units are ms, s, m and h, in any case; parts add up. Negative, infinite and NaN values are
    rejected, and so is a bool (TOML `true` is not a duration even though Python calls it an int).
    """
    if isinstance(value, bool):
        raise _duration_error(value, where)
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            raise _duration_error(value, where) from None
    elif isinstance(value, str):
        if plain := _PLAIN_NUMBER.fullmatch(value):
            seconds = float(plain.group(1))
        elif _DURATION.fullmatch(value):
            seconds = sum(
                float(number) * _DURATION_UNIT_SECONDS[unit.lower()]
                for number, unit in _DURATION_PART.findall(value)
            )
        else:
            raise _duration_error(value, where)
    else:
        raise _duration_error(value, where)
    if not math.isfinite(seconds) or seconds < 0:
        raise _duration_error(value, where)
    return seconds


def _size_error(value: object, where: str) -> ConfigError:
    return ConfigError(
        f'{where}: invalid size {_show(value)}: use bytes (1048576) or a string like "400MB", '
        '"512MiB", "1GB" (KB/MB/GB count in 1000s, KiB/MiB/GiB in 1024s)'
    )


def parse_size(value: object, where: str) -> int:
    """Bytes from `1048576`, `"100k"`, `"400MB"`, `"512MiB"` or `"1.5GB"`.

    KB/MB/GB/TB (and bare k/M/G/T) are powers of 1000; KiB/MiB/GiB/TiB are powers of 1024. Unit
    case is ignored. A fractional byte count is rounded down.
    """
    if isinstance(value, bool):
        raise _size_error(value, where)
    if isinstance(value, int):
        if value < 0:
            raise _size_error(value, where)
        return value
    if not isinstance(value, str) or not (match := _SIZE.fullmatch(value)):
        raise _size_error(value, where)
    number, unit = match.groups()
    multiplier = _SIZE_UNIT_BYTES.get(unit.lower())
    if multiplier is None:
        raise _size_error(value, where)
    try:
        # Integer arithmetic keeps "1.1GB" exact where floats would give 1099999999 (and
        # fractions would import decimal into the supervisor for one line).
        whole, _, fraction = number.partition(".")
        scale: int = 10 ** len(fraction)
        return (int(whole or "0") * scale + int(fraction or "0")) * multiplier // scale
    except ValueError:  # more digits than int() will convert
        raise _size_error(value, where) from None


_SUGGESTED_SIGNALS = "TERM, INT, QUIT, HUP, USR1, USR2"


def _signal_error(value: object, where: str) -> ConfigError:
    return ConfigError(
        f"{where}: unknown signal {_show(value)}: use a name like {_SUGGESTED_SIGNALS} "
        "(with or without SIG) or a number"
    )


def parse_signal(value: object, where: str) -> signal.Signals:
    """A signal from `"TERM"`, `"SIGTERM"`, `"term"`, `15` or `"15"`."""
    if isinstance(value, bool):
        raise _signal_error(value, where)
    if isinstance(value, str):
        name = value.strip().upper()
        if re.fullmatch("[0-9]{1,3}", name):
            value_number = int(name)
        else:
            name = name.removeprefix("SIG")
            try:
                return signal.Signals["SIG" + name]
            except KeyError:
                raise _signal_error(value, where) from None
    elif isinstance(value, int):
        value_number = value
    else:
        raise _signal_error(value, where)
    try:
        return signal.Signals(value_number)
    except ValueError:
        raise _signal_error(value, where) from None
