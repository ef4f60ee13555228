# -*- test-case-name: tests.test_wire,tests.clients.test_base64 -*-
"""How the fields that travel base64-encoded are read and answered.

The TrinityX ``luna`` CLI base64-encodes some fields when it sends them
(kernel options, comments, scripts, interface options, the ``grab_*``
lists, secret contents) and tries to base64-decode the same fields when it
shows them, keeping the text as it is when that fails. curl users send
plain text. One rule serves both, for every such field (docs/API.md,
"Base64 fields"):

In: a value is base64 when it is *canonical* base64 (standard alphabet,
``=`` padding, encoding its bytes again gives the same text), on one line
or wrapped as ``base64`` (76 columns) or ``openssl base64`` (64) wrap it:
every line but the last of that length. Its bytes are then the value (a text field
also needs them to be UTF-8). Anything else is plain text.

Out, two modes, named by a field's ``wire`` mark:
- ``"base64"``: always answered base64 (scripts, as the spec's examples);
- ``"either"``: answered as it is, unless the value would be taken for
  base64, by luna2d's own rule above or by the CLI's (a lenient or strict
  decoding to UTF-8), or is not ASCII (the CLI's decoder stops on it);
  then it is answered base64. So what is answered reads back as the stored
  value in both clients, and sending it back changes nothing.
Secret contents are bytes: answered as text by the ``"either"`` rule when
they are UTF-8 text, base64 otherwise (a munge key)."""

from __future__ import annotations

import base64
import binascii
import re

BASE64 = "base64"
EITHER = "either"
MODES = (BASE64, EITHER)

# What a decoder with validation may accept: the alphabet and padding, in
# any number (Python 3.11 takes "AAAA===" as the bytes of "AAAA").
_ALPHABET = re.compile(r"[A-Za-z0-9+/]*=*")
_LINE_BREAK = re.compile(r"\r?\n")
# The widths base64 tools wrap at: coreutils base64 (76), openssl and PEM (64).
_WRAP_WIDTHS = (64, 76)


def _canonical(text: str) -> bytes | None:
    """The bytes ``text`` encodes when it is canonical base64 on one line."""
    if not text or len(text) % 4 or not _ALPHABET.fullmatch(text):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if base64.b64encode(raw).decode("ascii") != text:
        return None  # stray bits or padding: not what an encoder writes
    return raw


def base64_bytes(text: str) -> bytes | None:
    """The bytes ``text`` carries when it is base64 by luna2d's rule (one
    canonical line, or wrapped at 64 or 76 columns), else None."""
    if "\n" not in text:
        return _canonical(text)
    lines = _LINE_BREAK.split(text)
    if lines[-1] == "":
        lines.pop()  # a final line break
    if len(lines) < 2 or "\r" in "".join(lines):
        return None
    width = len(lines[0])
    if width not in _WRAP_WIDTHS or any(len(line) != width for line in lines[:-1]):
        return None
    if not 0 < len(lines[-1]) <= width:
        return None
    return _canonical("".join(lines))


def base64_text(text: str) -> str | None:
    """The text ``text`` carries when it is base64 of UTF-8, else None."""
    raw = base64_bytes(text)
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def decode_text(value: str) -> str:
    """A text field's value as sent: the text it encodes when it is base64
    of UTF-8, else the value itself."""
    decoded = base64_text(value)
    return value if decoded is None else decoded


def decode_bytes(value: str) -> bytes:
    """A binary field's value (a secret's content) as sent: the bytes it
    encodes when it is base64, else the UTF-8 of the text itself."""
    raw = base64_bytes(value)
    return value.encode("utf-8") if raw is None else raw


def _cli_cannot_take_plain(text: str) -> bool:
    """Whether the CLI, which decodes with ``validate=True`` and keeps the
    text when that fails, would not show plain ``text`` as it is: it
    decodes it to UTF-8 text (Python's strict and lenient decoders are both
    tried, as the CLI may run on either), or it stops with a ValueError it
    does not catch, which Python's decoder raises for any text that is not
    ASCII."""
    if not text.isascii():
        return True
    text = text.replace("\r", "\\r")  # as the CLI does before decoding
    if not text or not _ALPHABET.fullmatch(text):
        return False
    for strict in (True, False):
        try:
            binascii.a2b_base64(text, strict_mode=strict).decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        return True
    return False


def taken_for_base64(text: str, binary: bool = False) -> bool:
    """Whether plain ``text`` cannot be answered as it is: luna2d would
    read it as base64, in a text field (base64 of UTF-8) or a ``binary``
    one (any bytes), or the CLI would not show it as it is."""
    ours = base64_bytes(text) if binary else base64_text(text)
    return ours is not None or _cli_cannot_take_plain(text)


def b64(raw: bytes) -> str:
    """``raw`` as canonical base64 on one line."""
    return base64.b64encode(raw).decode("ascii")


def encode_text(mode: str, value: str) -> str:
    """A stored text as answered in ``mode`` (see the module's docstring)."""
    if mode == BASE64 or taken_for_base64(value):
        return b64(value.encode("utf-8"))
    return value


def encode_bytes(value: bytes) -> str:
    """Stored bytes (a secret's content) as answered: the text when it is
    UTF-8 that cannot be taken for base64, else base64."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return b64(value)
    if "\x00" in text or taken_for_base64(text, binary=True):
        return b64(value)  # plain text with NUL is refused when sent back
    return text


def wrapped(raw: bytes, width: int = 76) -> str:
    """``raw`` as base64 in lines of ``width`` characters, each ending with a
    line break, as the ``base64`` tool writes it (for here-documents)."""
    text = b64(raw)
    return "".join(text[i : i + width] + "\n" for i in range(0, len(text), width))
