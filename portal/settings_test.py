"""Settings for the test suite: the portal's own, in explicit development mode.

Development mode allows the public development key and plain HTTP. Processes the tests start
(sandbox servers, benchmark workers, the portal under a browser) inherit it from the environment.
"""

import os

os.environ.setdefault("PORTAL_DEV", "true")

from portal.settings import *  # noqa: E402, F403
