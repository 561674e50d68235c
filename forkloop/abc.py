"""aiohttp.abc's names for forkloop: the interfaces an application may implement itself.

``from aiohttp.abc import AbstractRouter`` becomes ``from forkloop.abc import AbstractRouter``
(a custom router for ``web.Application(router=...)``); the other names are the classes of the
same role that ``forkloop.web`` already uses.
"""

from __future__ import annotations

from .core.web.log import AbstractAccessLogger
from .core.web.urldispatcher import AbstractMatchInfo, AbstractRouter, AbstractView

__all__ = ["AbstractAccessLogger", "AbstractMatchInfo", "AbstractRouter", "AbstractView"]
