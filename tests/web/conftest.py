"""Fixtures of the web area: forkloop's aiohttp-compatible pytest fixtures.

They come from ``forkloop.pytest_plugin`` (a ``pytest11`` entry point once forkloop is
installed); importing them here keeps the tests working from a plain source checkout.
"""

from forkloop.pytest_plugin import (  # noqa: F401
    aiohttp_client,
    aiohttp_raw_server,
    aiohttp_server,
    aiohttp_unused_port,
)
