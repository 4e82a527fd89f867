"""The RE Manager process of ``insitu serve queue``: bluesky-queueserver's, minus what is unsafe.

The manager's 0MQ control socket has no per-method permissions: whoever reaches it may upload
and run arbitrary Python in the worker (``script_upload``), rewrite who may queue what
(``permissions_set``) or SIGKILL the worker mid-plan (``environment_destroy``, which leaves no
chance to cool the stage). This entry point refuses those methods (unless the station was
started with ``--admin-methods``) and then runs queueserver's own ``start_manager``.
"""

from __future__ import annotations

import os

__all__ = ["ADMIN_METHODS_ENV", "REFUSED_METHODS", "main"]

#: Set (to "1") in the manager's environment to keep the refused methods available.
ADMIN_METHODS_ENV = "INSITU_QUEUE_ADMIN_METHODS"

#: 0MQ methods refused by default, with the reason the client is given.
REFUSED_METHODS = {
    "script_upload": "it runs arbitrary code in the worker; add plans to the profile instead",
    "permissions_set": "user group permissions come from the station's profile only",
    "environment_destroy": (
        "it kills the worker without a safe exit; use environment_close, or stop the plan "
        "(re_abort) first"
    ),
}


def main() -> None:
    """Refuse :data:`REFUSED_METHODS` (unless ``$INSITU_QUEUE_ADMIN_METHODS``), then serve."""
    from bluesky_queueserver.manager.manager import RunEngineManager
    from bluesky_queueserver.manager.start_manager import start_manager

    from insitu.compat.bluesky_queueserver import deny_methods

    if os.environ.get(ADMIN_METHODS_ENV) != "1":
        deny_methods(RunEngineManager, REFUSED_METHODS)
    start_manager()


if __name__ == "__main__":
    main()
