"""forkloop: aiohttp.web's API on a strict HTTP/1.1 core, run by a pre-fork supervisor."""

__version__ = "0.1.0"
