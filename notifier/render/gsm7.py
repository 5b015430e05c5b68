"""GSM-7, the SMS alphabet: what fits in one 160-character segment, and transliteration into it."""

from __future__ import annotations

import unicodedata

SEGMENT_SEPTETS = 160
# GSM 03.38 basic character set (one septet each); ESC (0x1B) is left out on purpose.
BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs two septets (ESC + char).
EXTENDED = frozenset("^{}\\[~]|€\f")
_LOOKALIKES = {
    "‘": "'",
    "’": "'",
    "‚": "'",
    "“": '"',
    "”": '"',
    "„": '"',
    "–": "-",
    "—": "-",
    "…": "...",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "œ": "oe",
    "Œ": "OE",
    "þ": "th",
    "Þ": "Th",
    "ı": "i",
    "Ħ": "H",
    "ħ": "h",
    "ð": "d",
    "Ð": "D",
    "\u00a0": " ",
}


def septets(text: str) -> int:
    """Septets `text` takes in GSM-7; ValueError if a character is outside the alphabet."""
    total = 0
    for char in text:
        if char in BASIC:
            total += 1
        elif char in EXTENDED:
            total += 2
        else:
            raise ValueError(f"{char!r} is not in the GSM-7 alphabet")
    return total


def to_gsm7(text: str) -> str:
    """`text` in GSM-7 basic characters on one line: accents stripped, the rest dropped."""
    out: list[str] = []
    for char in " ".join(text.split()):
        if char in BASIC and char not in "\r\n":
            out.append(char)
            continue
        char = _LOOKALIKES.get(char, char)
        if len(char) > 1 or char in BASIC:
            out.append(char)
            continue
        # NFKD splits "ą" into "a" + ogonek and "ｆ" into "f"; keep the parts GSM-7 has.
        out.extend(part for part in unicodedata.normalize("NFKD", char) if part in BASIC)
    return " ".join("".join(out).split())
