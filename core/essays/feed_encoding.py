"""A feed's bytes as text in the encoding it declares, before any XML parser sees them.

Left to itself, feedparser meets one undecodable byte in a UTF-8 feed by decoding the whole
document as windows-1252: every accented letter turns into mojibake ("Ã©"). So ember decodes
first, as RFC 7303 orders the declarations (a byte order mark, else the Content-Type charset,
else the XML declaration, else UTF-8), replaces each undecodable byte sequence with one U+FFFD
(visible, and said once in the log), and hands the parser UTF-8 that declares itself so.
"""

from __future__ import annotations

import codecs
import logging
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)

_BOMS = (  # longest first: a UTF-32 LE mark begins with the UTF-16 LE one
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
_CHARSET = re.compile(r";\s*charset\s*=\s*[\"']?([^\"';\s]+)", re.IGNORECASE)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*?\?>")
_XML_ENCODING = re.compile(r"""encoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]*)["']""")
UTF8_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'


@dataclass(frozen=True)
class Decoded:
    """The feed as UTF-8 bytes declaring UTF-8, the encoding it was read in, and how many byte
    sequences could not be decoded (each is one U+FFFD now)."""

    body: bytes
    encoding: str
    replaced: int


def decode(body: bytes, content_type: str) -> Decoded:
    encoding, body = declared_encoding(body, content_type)
    text = body.decode(encoding, errors="replace")
    # U+FFFD the feed wrote itself survives "ignore"; those the decoding made do not.
    replaced = text.count("\ufffd") - body.decode(encoding, errors="ignore").count("\ufffd")
    if replaced:
        log.warning(
            "a feed declared as %s has %d undecodable byte sequences, shown as U+FFFD", encoding, replaced
        )
    # Without a declaration, XML is UTF-8 already.
    text = _XML_DECLARATION.sub(UTF8_DECLARATION, text, count=1)
    return Decoded(text.encode(), encoding, replaced)


def declared_encoding(body: bytes, content_type: str) -> tuple[str, bytes]:
    """The encoding `body` declares (RFC 7303's order), and `body` without its byte order mark.
    A declaration naming no text encoding Python knows is passed over."""
    for mark, encoding in _BOMS:
        if body.startswith(mark):
            return encoding, body[len(mark) :]
    candidates = (_charset(content_type), _wide_start(body), _xml_encoding(body))
    return next((c for c in candidates if c and _is_text_encoding(c)), "utf-8"), body


def _charset(content_type: str) -> str:
    found = _CHARSET.search(content_type)
    return found.group(1).lower() if found else ""


def _wide_start(body: bytes) -> str:
    """UTF-16 without a byte order mark, known by how "<?" is spelled (XML 1.0, appendix F)."""
    return {b"<\x00?\x00": "utf-16-le", b"\x00<\x00?": "utf-16-be"}.get(body[:4], "")


def _xml_encoding(body: bytes) -> str:
    # The declaration is ASCII in every encoding the XML specification lets declare itself.
    declaration = _XML_DECLARATION.match(body[:1024].decode("latin-1"))
    found = _XML_ENCODING.search(declaration.group(0)) if declaration else None
    return found.group(1).lower() if found else ""


def _is_text_encoding(name: str) -> bool:
    """A codec Python knows that turns bytes into text (not "base64", not a typo)."""
    try:
        b"<".decode(name, errors="replace")  # an empty input would skip the codec's lookup
    except LookupError:
        return False
    return True
