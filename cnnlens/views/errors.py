"""One line per error for the views' in-place error areas (``.cnnlens-error``)."""

from __future__ import annotations

__all__ = ["describe"]


def describe(exc: BaseException) -> str:
    """One line for the in-place error area: the error and, if chained, its cause.

    >>> try:
    ...     try:
    ...         1 / 0
    ...     except ZeroDivisionError as e:
    ...         raise ValueError("bad layer") from e
    ... except ValueError as e:
    ...     describe(e)
    'ValueError: bad layer (caused by ZeroDivisionError: division by zero)'
    """
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    if cause is not None and str(cause) not in text:
        text += f" (caused by {type(cause).__name__}: {cause})"
    return text
