"""The asyncio adapter: per-connection protocol, timers, flow control, registry, shutdown."""
