"""Load the beamline (config from $INSITU_CONFIG, else the simulated one) and its RunEngine.

The same files start an IPython session (``ipython --profile-dir profiles/profile_insitu``) and
the bluesky-queueserver worker (``start-re-manager --startup-dir .../startup``, or
``insitu serve queue``), which finds ``RE`` here.
"""

import atexit
import multiprocessing.util
import os

from bluesky_queueserver import is_re_worker_active

import insitu.beamline

bl = insitu.beamline.load(os.environ.get("INSITU_CONFIG") or None)
if is_re_worker_active():
    # The queueserver's worker is a multiprocessing child: it ends without running atexit
    # handlers, but runs multiprocessing's finalizers, so the catalog writer is flushed there.
    multiprocessing.util.Finalize(None, bl.close, exitpriority=10)
    bl.RE.waiting_hook = None  # no progress bars in the published console output
else:
    atexit.register(bl.close)

RE = bl.RE
catalog = bl.catalog


def flush_catalog(timeout: float = 120.0) -> None:
    """Wait until live analysis and the catalog writer have stored every document.

    ``insitu serve queue`` runs it (queueserver ``function_execute``) before it closes the
    environment: the queueserver gives a closing worker only 0.5 s before killing it.
    """
    bl.flush(timeout)


db = insitu.beamline.broker(bl.catalog)  # db[-1].table(), for databroker v1 habits
print(f"insitu: beamline {bl.config.name!r}, catalog {bl.config.catalog.location!r}")
