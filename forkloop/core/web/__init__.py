"""aiohttp.web's API: Application, routing, requests, responses, runner, sites."""
