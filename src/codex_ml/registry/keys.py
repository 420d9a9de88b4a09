"""What a registry key is: one canonical spelling per name a person would read as the same.

Lower case and surrounding space are not enough. The fullwidth
``\\uff50\\uff50\\uff4c`` looks like ``ppl`` and ``ppl\\u200b`` prints exactly
like it, so either would sit beside ``ppl`` as a second key that no one can
tell apart from the first; and a key holding ``\\n`` would forge a row of
``codex-ml plugins list``. So a key is folded with Unicode NFKC (compatibility
forms become the plain letters they stand for), stripped and lower-cased, and
then must hold only characters that print and show: control, format
(zero-width), separator and unassigned code points are refused, and so are the
few printable characters Unicode marks as default-ignorable (variation
selectors, Hangul fillers, ...).

ASCII is already in NFKC form, so ordinary keys never reach ``unicodedata``.
"""

from __future__ import annotations

__all__ = ["key_problem", "normalize_key"]

#: Printable code points that render as nothing (Unicode Default_Ignorable_Code_Point
#: minus the format, control and unassigned ones, which ``str.isprintable`` refuses).
_INVISIBLE = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul choseong / jungseong fillers (NFKC of U+3164, U+FFA0)
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors
    (0xFE00, 0xFE0F),  # variation selectors
    (0xE0100, 0xE01EF),  # variation selectors supplement
)


def normalize_key(name: str) -> str:
    """The canonical form of a key, or a ``ValueError`` saying why ``name`` cannot be one.

    The caller checks that ``name`` is a ``str``. Base-class methods are used so
    that a ``str`` subclass cannot change what its key is.
    """
    key = str.lower(str.strip(name))
    if not str.isascii(key):
        import unicodedata

        # Lower-casing can leave a sequence NFKC would reorder or compose ("İ" becomes
        # "i" + U+0307), so the form is taken after it: normalising a key again changes nothing.
        key = unicodedata.normalize("NFKC", str.lower(unicodedata.normalize("NFKC", key))).strip()
    problem = key_problem(key)
    if problem:
        raise ValueError(problem)
    return key


def key_problem(key: str) -> str | None:
    """Why ``key`` (already normalised) cannot be a key, or None if it can."""
    if not key:
        return "keys must be non-empty"
    if str.isprintable(key) and (str.isascii(key) or not any(map(_invisible, key))):
        return None
    bad = next(char for char in key if not char.isprintable() or _invisible(char))
    return (
        f"keys must hold only visible characters, and {bad!r} (U+{ord(bad):04X}) is a "
        f"control, zero-width or other invisible character"
    )


def _invisible(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _INVISIBLE)
