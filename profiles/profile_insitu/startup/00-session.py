"""Load the beamline (config from $INSITU_CONFIG, else the simulated one) and its RunEngine."""

import atexit
import os

import insitu.beamline

bl = insitu.beamline.load(os.environ.get("INSITU_CONFIG") or None)
atexit.register(bl.close)

RE = bl.RE
catalog = bl.catalog
db = insitu.beamline.broker(bl.catalog)  # db[-1].table(), for databroker v1 habits
print(f"insitu: beamline {bl.config.name!r}, catalog {bl.config.catalog.location!r}")
