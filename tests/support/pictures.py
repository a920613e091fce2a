"""Looking at pictures in tests: a PNG's size, its colours."""

from __future__ import annotations

import struct
from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG (from its header; fails the test if it is not one)."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def colours(path: Path) -> set[tuple[int, ...]]:
    """Every RGB colour a picture has."""
    from PIL import Image  # matplotlib's own dependency: there with the report extra

    with Image.open(path) as image:
        counted = image.convert("RGB").getcolors(maxcolors=1 << 24)
    assert counted is not None
    return {colour for _, colour in counted}


def rgb(hex_colour: str) -> tuple[int, int, int]:
    """``#2ca02c`` as (44, 160, 44)."""
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)
