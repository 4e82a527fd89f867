"""ophyd Signals for the stage: poller-fed readbacks and settings validated before they apply."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ophyd import Signal, SignalRO
from ophyd.status import StatusBase

from insitu import clock

__all__ = ["CheckedSignal", "ReadbackSignal"]


class ReadbackSignal(SignalRO):
    """A read-only Signal whose value the device's poller updates (through :meth:`update`).

    Subscribers (``bps.monitor``, progress bars) are told only when the value changes, as with
    a Channel Access monitor.
    """

    def update(self, value: Any, timestamp: float, *, force: bool = False) -> None:
        """Publish ``value`` read at experiment time ``timestamp`` (if changed, or ``force``)."""
        if not force and _same(value, self._readback):
            return
        Signal.put(self, value, timestamp=timestamp, force=True)


class CheckedSignal(Signal):
    """A setting that is validated (and optionally applied to hardware) before it is stored.

    Parameters
    ----------
    check : callable(signal, value) -> value
        Returns the normalised value or raises ValueError/TypeError naming value and range.
    apply : callable(signal, value), optional
        Sends the checked value to the hardware; the Signal only changes if this succeeds.
    """

    def __init__(
        self,
        *,
        check: Callable[[CheckedSignal, Any], Any],
        apply: Callable[[CheckedSignal, Any], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._check = check
        self._apply = apply

    def check_value(self, value: Any) -> None:
        """Raise ValueError/TypeError if ``value`` is not acceptable."""
        self._check(self, value)

    def put(
        self,
        value: Any,
        *,
        timestamp: float | None = None,
        force: bool = False,
        metadata: dict | None = None,
        **kwargs: Any,
    ) -> None:
        """Validate, apply to the hardware, then store (timestamped in experiment time)."""
        if not force:
            value = self._check(self, value)
            if self._apply is not None:
                self._apply(self, value)
        super().put(
            value,
            timestamp=clock.now() if timestamp is None else timestamp,
            force=True,
            metadata=metadata,
            **kwargs,
        )

    def set(self, value: Any, **kwargs: Any) -> StatusBase:
        """Validate at once (not in ophyd's set thread), then put and return a Status."""
        self._check(self, value)
        return super().set(value, **kwargs)

    def _set_and_wait(self, value: Any, timeout: float | None, **kwargs: Any) -> None:
        # The stored value may be normalised (rounded), so do not wait for an exact echo.
        self.put(value)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False
