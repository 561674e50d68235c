"""Sans-I/O RFC 6455 WebSocket codec: handshake, frames, masking, UTF-8, deflate, close."""
