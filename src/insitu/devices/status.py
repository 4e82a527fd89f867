"""ophyd Status objects whose text names their failure, so a run's stop reason says why."""

from __future__ import annotations

from ophyd.status import DeviceStatus, MoveStatus

__all__ = ["ExplainedDeviceStatus", "ExplainedMoveStatus"]


class _Explained:
    """Mixin: ``str(status)`` of a failed Status ends with its exception.

    bluesky records a failed Status in the stop document as ``reason=str(FailedStatus(status))``,
    which for a plain ophyd Status is only ``DeviceStatus(device=eis, done=True, success=False)``;
    the cause would reach the caller of ``RE()`` but never the catalog.
    """

    def __str__(self) -> str:
        text = super().__str__()
        if self.done and not self.success:
            error = self.exception(timeout=0)
            if error is not None:
                text += f": {type(error).__name__}: {error}"
        return text


class ExplainedDeviceStatus(_Explained, DeviceStatus):
    """A DeviceStatus whose text names its failure."""


class ExplainedMoveStatus(_Explained, MoveStatus):
    """A MoveStatus whose text names its failure."""
