"""The public facade: ``from forkloop import web`` exposes aiohttp.web's names.

Each ``forkloop.core.web`` module lists its public names in ``__all__``; this module only
re-exports them, so ``from aiohttp import web`` -> ``from forkloop import web`` is the whole port.
``python -m forkloop.web`` runs aiohttp's ``python -m aiohttp.web`` command line.
"""

from __future__ import annotations

from .core.web.app import *
from .core.web.exceptions import *
from .core.web.fileresponse import *
from .core.web.forms import *
from .core.web.helpers import *
from .core.web.log import *
from .core.web.lowlevel import *
from .core.web.middlewares import *
from .core.web.multipart import *
from .core.web.request import *
from .core.web.response import *
from .core.web.routedef import *
from .core.web.run_app import *
from .core.web.runner import *
from .core.web.static import *
from .core.web.streams import *
from .core.web.urldispatcher import *
from .core.web.ws import *

if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess test
    from .core.web.cli import main

    main()
