"""E-mail addresses and phone numbers taken out of exported text.

Training data outlives the conversations it came from, so contact details users typed (or that a
cited document carried) are replaced by placeholders before anything is written.
"""

import re
from functools import lru_cache

import phonenumbers

EMAIL_PLACEHOLDER = "[email]"
PHONE_PLACEHOLDER = "[phone]"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
# libphonenumber decides what is a phone number, but scanning every passage with it is slow; this
# cheap pattern finds the runs of digits and separators long enough to be one and only those are
# handed to it. Technical text is full of numbers (section 01 13 10, 1200 x 600) that it rejects.
_DIGIT_RUN = re.compile(r"\+?\(?\d[\d\s().\-/]{5,}\d")
_MIN_PHONE_DIGITS = 7


def redact(text: str, region: str = "US") -> str:
    """`text` with e-mail addresses and phone numbers replaced by placeholders.

    `region` is the country whose national format is assumed for numbers written without a
    leading +country code.
    """
    if not text:
        return text
    clean = _redact_cached(text, region)
    # Text without a change is returned as the very object passed in (the cache may hold an equal
    # copy from an earlier turn), so callers can tell by identity that nothing was found.
    return text if clean == text else clean


@lru_cache(maxsize=8192)
def _redact_cached(text: str, region: str) -> str:
    # Cached because the same retrieved passages come back in many turns.
    redacted = _EMAIL.sub(EMAIL_PLACEHOLDER, text) if "@" in text else text
    return _DIGIT_RUN.sub(lambda run: _redact_phones(run.group(0), region), redacted)


def _redact_phones(run: str, region: str) -> str:
    if sum(ch.isdigit() for ch in run) < _MIN_PHONE_DIGITS:
        return run
    spans = [(m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(run, region)]
    for start, end in reversed(spans):
        run = run[:start] + PHONE_PLACEHOLDER + run[end:]
    return run
