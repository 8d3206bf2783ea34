"""Real PNG files for tests, built in memory (no image library needed)."""

from __future__ import annotations

import random
import struct
import zlib


def png(width: int = 480, height: int = 360, *, noise: bool = False) -> bytes:
    """Signature, IHDR, one IDAT, IEND; 480x360 by default (a size every image model takes). Grey
    pixels by default; with noise (seeded, so repeatable)
    the image does not compress and its size is about width * height * 3 bytes."""
    source = random.Random(width * height)
    rows = b"".join(
        b"\x00" + (source.randbytes(width * 3) if noise else b"\x80\x80\x80" * width) for _ in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
