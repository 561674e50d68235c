"""The event-loop web core: sans-I/O protocol layers, the asyncio adapter and the web API."""
