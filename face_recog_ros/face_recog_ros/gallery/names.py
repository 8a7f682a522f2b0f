"""Person names: the rules a label must follow, and the canonical form used for lookups.

Names are labels, never paths, and must not collide with the labels the system emits itself
(unknown, and unknown_<n> for strangers).
"""
from __future__ import annotations

import re
import unicodedata

from ..types import UNKNOWN

MAX_NAME_LENGTH = 64
_RESERVED_AUTO = re.compile(r"unknown_\d+")


class InvalidName(ValueError):
    """A person name that cannot be used as a label."""


def validate_name(name: str) -> str:
    """Return the canonical form of ``name`` (stripped, NFC) or raise :class:`InvalidName`.

    Names are labels, never paths, and must not collide with labels the system emits itself.
    Invisible characters (control, zero-width, bidi overrides) are refused: they would make
    two people whose labels look the same. NFC first, so "José" typed either way is one person.
    """
    if not isinstance(name, str):
        raise InvalidName(f"name must be a string, got {type(name).__name__}")
    canonical = unicodedata.normalize("NFC", name.strip())
    if not canonical:
        raise InvalidName("name is empty")
    if len(canonical) > MAX_NAME_LENGTH:
        raise InvalidName(
            f"name is {len(canonical)} characters long; the limit is {MAX_NAME_LENGTH}"
        )
    for ch in canonical:
        if ch in "/\\":
            raise InvalidName(f"name {canonical!r} contains {ch!r}; names are labels, not paths")
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs", "Zl", "Zp"):
            raise InvalidName(f"name {canonical!r} contains control character {ch!r}")
        if category == "Cf":  # zero-width and bidi controls make look-alike labels ("alice\u200b")
            raise InvalidName(f"name {canonical!r} contains invisible formatting character "
                              f"U+{ord(ch):04X} ({unicodedata.name(ch, 'unnamed')})")
    if canonical in (".", ".."):
        raise InvalidName(f"name {canonical!r} is not allowed")
    folded = canonical.casefold()
    if folded == UNKNOWN or _RESERVED_AUTO.fullmatch(folded):
        raise InvalidName(f"name {canonical!r} is reserved for unrecognised faces")
    return canonical


def lookup_key(name: str) -> str:
    """Canonicalise a name for lookup without rejecting it (lookups of bad names just miss)."""
    return unicodedata.normalize("NFC", name.strip()) if isinstance(name, str) else ""
