"""Client-to-server payload masking (RFC 6455 section 5.3). Imports nothing of ours.

Two pure-Python strategies, picked by size (measured: ``bench`` notes in docs/websockets.md):
short payloads XOR as one big integer; from 256 bytes on, each of the four byte lanes
(``data[i::4]``) goes through ``bytes.translate`` with a precomputed 256-entry XOR table,
which runs at C speed (about 1 GB/s) and stays linear for multi-megabyte messages.
"""

from __future__ import annotations

__all__ = ["apply_mask"]

# _XOR_TABLES[k] maps every byte b to b ^ k.
_XOR_TABLES: tuple[bytes, ...] = tuple(bytes(b ^ k for b in range(256)) for k in range(256))
_INT_MAX = 256


def apply_mask(mask: bytes, data: bytes) -> bytes:
    """Return ``data`` XOR-ed with the repeating 4-byte ``mask`` (masking is its own inverse)."""
    n = len(data)
    if n < _INT_MAX:
        if not n:
            return b""
        q, r = divmod(n, 4)
        key = int.from_bytes(mask * q + mask[:r], "little")
        return (int.from_bytes(data, "little") ^ key).to_bytes(n, "little")
    buf = bytearray(data)
    tables = _XOR_TABLES
    buf[0::4] = buf[0::4].translate(tables[mask[0]])
    buf[1::4] = buf[1::4].translate(tables[mask[1]])
    buf[2::4] = buf[2::4].translate(tables[mask[2]])
    buf[3::4] = buf[3::4].translate(tables[mask[3]])
    return bytes(buf)
