"""Which of a type's probes a platform can make itself: a TCP connect or an HTTP GET on the
unit's own PORT, from a loopback address (where procrun makes them, inside the unit). Any other
probe (sd_notify, a log line, a command, another host) is asked through `procrun status TYPE`,
which exits 0 once the type's processes are RUNNING, which means ready. The platform connects to
the unit's address, not to loopback: a type that serves traffic listens there anyway."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from procrun.export.units import PORT_VARIABLE, Unit
from procrun.settings import Probe, ProbeKind

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "0.0.0.0", "::1", "::"})


@dataclass(frozen=True)
class DirectProbe:
    """A probe the platform can make itself: a TCP connect or an HTTP GET on the unit's PORT."""

    kind: ProbeKind
    path: str = "/"
    scheme: str = "HTTP"


def direct_probe(probe: Probe | None, port: int | None) -> DirectProbe | None:
    """The platform's own check for a tcp or http probe on this unit's PORT, or None (the probe
    is then asked through `procrun status TYPE`)."""
    if probe is None or port is None or probe.kind not in (ProbeKind.TCP, ProbeKind.HTTP):
        return None
    target = PORT_VARIABLE.sub(str(port), probe.target)
    if "$" in target:
        return None
    if probe.kind is ProbeKind.TCP:
        host, _, number = target.rpartition(":")
        same = host.strip("[]") in _LOOPBACK and number == str(port)
        return DirectProbe(ProbeKind.TCP) if same else None
    if probe.status is not None and not 200 <= probe.status < 300:
        return None  # kubelet and Render take 200-399 as passing: not the same check
    url = urlsplit(target)
    try:
        same = url.hostname in _LOOPBACK and url.port == port
    except ValueError:
        return None
    if not same:
        return None
    path = url.path or "/"
    return DirectProbe(
        ProbeKind.HTTP, path + (f"?{url.query}" if url.query else ""), url.scheme.upper()
    )


def status_command(unit: Unit) -> list[str]:
    """`procrun status TYPE`: 0 once the type's processes are RUNNING, which means ready."""
    return ["procrun", "status", unit.kind]
