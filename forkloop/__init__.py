"""forkloop: aiohttp.web's API on a strict HTTP/1.1 core, run by a pre-fork supervisor."""

import os as _os

__version__ = "0.1.0"

if _os.environ.get("FORKLOOP_NO_EXTENSIONS"):  # the mypyc-compiled modules stay unused
    from ._pure import use_python_sources

    use_python_sources()
