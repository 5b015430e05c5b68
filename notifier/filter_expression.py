"""Whether a MIXPANEL_FILTER stands on its own: the guard that keeps a filter from widening the query.

The filter is ANDed with the window inside parentheses. It could escape them only by closing a
parenthesis it did not open, or by leaving a string open so that the closing parenthesis around it
is read as part of that string. Both are refused here, before anything is asked of Mixpanel, and so
is any backslash: how an escape inside a string is read is exactly what such a filter would play on.
"""

from __future__ import annotations

_PAIRS = {")": "(", "]": "["}
_QUOTES = "\"'"


def why_unbalanced(expression: str) -> str | None:
    """What keeps `expression` from standing on its own inside parentheses; None when nothing does."""
    if "\\" in expression:
        return "it holds a backslash"
    if any(ord(char) < 32 or ord(char) == 127 for char in expression):
        return "it holds a control character"
    open_brackets: list[str] = []
    quote: str | None = None
    for char in expression:
        if quote is not None:
            quote = None if char == quote else quote
        elif char in _QUOTES:
            quote = char
        elif char in "([":
            open_brackets.append(char)
        elif char in _PAIRS and (not open_brackets or open_brackets.pop() != _PAIRS[char]):
            return f"a {char} closes what it did not open"
    if quote is not None:
        return f"a {quote} is never closed"
    if open_brackets:
        return f"a {open_brackets[-1]} is never closed"
    return None
