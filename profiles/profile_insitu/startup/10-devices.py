"""Put the beamline's devices in the namespace by name (None where an instrument is absent)."""

stage = bl.devices.get("stage")  # noqa: F821 (bl comes from 00-session.py)
raman = bl.devices.get("raman")  # noqa: F821
eis = bl.devices.get("eis")  # noqa: F821
print(f"insitu: devices {sorted(bl.devices) or 'none'}")  # noqa: F821
