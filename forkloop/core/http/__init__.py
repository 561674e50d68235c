"""Sans-I/O HTTP/1.1 on httptools: parser events, limits, errors, response heads. No asyncio."""
