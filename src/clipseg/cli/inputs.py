"""What `clipseg segment` reads from standard input and prompt files, bounded: an image on
standard input is identified from its first bytes and read up to a limit; prompt lines are
read one at a time with a length limit; the number of prompts is capped. Each refusal is
one line (click.UsageError subclasses), before the model loads."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import TextIO

import click

MAX_STDIN_IMAGE_BYTES = 128 << 20  # an image on standard input (a 64 Mpx photo compresses to less)
MAX_PROMPT_LINE_CHARS = 1000  # CLIP reads 75 tokens; longer lines are refused, not tokenized
MAX_PROMPTS = 1000  # prompts (and expression terms) of one run
_HEAD = 64 << 10


class InputError(click.ClickException):
    exit_code = 2


def _stdin_binary():
    stream = sys.stdin
    if stream is None or getattr(stream, "closed", False):
        raise InputError("standard input is closed: nothing to read for '-'")
    return getattr(stream, "buffer", stream)


def read_stdin_image(limit: int = MAX_STDIN_IMAGE_BYTES) -> bytes:
    """The bytes of one image on standard input: refused after its first 64 KiB when no image
    format is recognised there, or when it is longer than `limit`."""
    from PIL import Image, UnidentifiedImageError

    stream = _stdin_binary()
    try:
        head = stream.read(_HEAD)
    except (OSError, ValueError) as e:
        raise InputError(f"standard input cannot be read: {e}") from None
    if not head:
        raise InputError("standard input is empty: no image to read for '-'")
    try:
        Image.open(io.BytesIO(head)).close()  # reads the header only
    except UnidentifiedImageError:
        raise InputError(f"standard input is not an image (its first bytes: {head[:8]!r})") from None
    except Exception:  # noqa: BLE001 - a recognised format whose header goes on past the head: read on
        pass
    rest = stream.read(limit + 1 - len(head))
    if len(head) + len(rest) > limit:
        raise InputError(f"standard input holds more than {limit >> 20} MiB: larger than an image this program reads")
    return head + rest


def read_prompt_lines(path: Path) -> list[str]:
    """Non-empty stripped lines of a prompts file ('-': standard input), at most
    MAX_PROMPT_LINE_CHARS characters each and MAX_PROMPTS of them."""
    if str(path) == "-":
        stream = sys.stdin
        if stream is None or getattr(stream, "closed", False):
            raise InputError("standard input is closed: no prompts to read for --prompts-file -")
        return _lines(stream, "prompts from standard input")
    try:
        with open(path, encoding="utf-8") as f:
            return _lines(f, f"prompts file '{path}'")
    except OSError as e:
        raise InputError(f"cannot read prompts file '{path}': {e.strerror or e}") from None


def _lines(stream: TextIO, what: str) -> list[str]:
    out: list[str] = []
    number = 0
    try:
        while True:
            line = stream.readline(MAX_PROMPT_LINE_CHARS + 2)
            if not line:
                return out
            number += 1
            if len(line.rstrip("\r\n")) > MAX_PROMPT_LINE_CHARS:  # read no further than the limit
                raise InputError(f"{what}: line {number} is longer than {MAX_PROMPT_LINE_CHARS} characters")
            if line.strip():
                out.append(line.strip())
                if len(out) > MAX_PROMPTS:
                    raise InputError(f"{what}: more than {MAX_PROMPTS} prompts")
    except UnicodeDecodeError as e:
        raise InputError(f"cannot read {what}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def check_prompt_count(n: int) -> None:
    if n > MAX_PROMPTS:
        raise InputError(f"{n} prompts, more than the {MAX_PROMPTS} one run segments; split them into several runs")
