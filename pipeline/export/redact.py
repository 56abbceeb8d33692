"""E-mail addresses and phone numbers taken out of exported text.

Training data outlives the conversations it came from, so contact details users typed (or that a
cited document carried) are replaced by placeholders before anything is written. Engineering data
(dates, times, clause, drawing, part and serial numbers, standards, dimensions, money) must stay:
it is what the answers are about.

Why phonenumbers (Google's libphonenumber) and not a PII framework: Presidio and scrubadub, the
maintained PII libraries, both find phone numbers by calling this same library, and Presidio also
needs a spaCy language model, which spaCy does not publish on PyPI (only unofficial copies are);
for e-mail they use a regular expression like the one below. So the detector is libphonenumber's
matcher at its default leniency (VALID: a real number of the region's plan, with the national
prefix where one is dialled); given the text around a number it also skips dates with slashes and
date-and-time stamps ("2024-08-15 10:30"). Stricter leniencies
(STRICT_GROUPING, EXACT_GROUPING) were tried and rejected: they miss real numbers written in
common groupings ("0151 2345 6789" in Germany, "04 1234 5678" in Australia). What libphonenumber
cannot know is what a number is called in the text, so a few context rules decide, after it:

- a number written with +country code is always a phone number;
- a number named by the label just before it ("serial", "S/N", "part no.", "project", "DWG") is not;
- one with a phone word shortly before it ("tel", "phone", "call", "mobile", "fax") is;
- otherwise a bare block of digits ("2125550143") is taken for an identifier, since serial and
  project numbers are written that way and phone numbers rarely are, while a grouped number
  ("212-555-0143", "(02) 9876 5432") is taken for a phone number.
"""

import re
from functools import lru_cache

import phonenumbers

EMAIL_PLACEHOLDER = "[email]"
PHONE_PLACEHOLDER = "[phone]"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
# libphonenumber decides what is a phone number, but scanning every passage with it is slow; this
# cheap pattern finds the runs of digits and separators long enough to be one and only those are
# handed to it, with a character either side (a letter there means the digits are part of a code)
# and the few after (":30" after a date and hour marks a time stamp, which libphonenumber skips).
_DIGIT_RUN = re.compile(r"\+?\(?\d[\d\s().\-/]{5,}\d")
_MIN_PHONE_DIGITS = 7
_BEFORE, _AFTER = 1, 3

# Names of engineering identifiers, directly before the number: "S/N: 2125550143", "Project no. …".
_LABEL = re.compile(
    r"\b(?:serial|s/n|sn|part|p/n|pn|project|proj|job|drawing|dwg|document|doc|ref|reference|item|"
    r"model|asset|batch|contract|sheet|catalog|catalogue|cat|article|art|invoice|order|po|tag)"
    r"(?:\s*(?:no|nr|number)\b\.?)?\s*[:#.\-]?\s*$",
    re.IGNORECASE,
)
# Words that say a phone number follows, within _CUE_CHARS before it: "call John on …", "Tel.: …".
_PHONE_CUE = re.compile(
    r"\b(?:t[eé]l\w*|phone\w*|ph|mob\w*|cell\w*|fax|call\w*|ring|sms|whatsapp|contact\w*|dial\w*|"
    r"number|hotline)\b",
    re.IGNORECASE,
)
_CUE_CHARS = 40


def redact(text: str, region: str = "US") -> str:
    """`text` with e-mail addresses and phone numbers replaced by placeholders.

    `region` is the country (ISO 3166-1 alpha-2, e.g. "US", "GB") whose national format is assumed
    for numbers written without a leading +country code. Text in which nothing was found is
    returned as the very object passed in.
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
    for start, end in reversed(_phone_spans(redacted, region)):
        redacted = redacted[:start] + PHONE_PLACEHOLDER + redacted[end:]
    return redacted


def _phone_spans(text: str, region: str) -> list[tuple[int, int]]:
    """(start, end) of each phone number in `text`, in order and not overlapping."""
    spans = set()
    for run in _DIGIT_RUN.finditer(text):
        if sum(ch.isdigit() for ch in run.group(0)) < _MIN_PHONE_DIGITS:
            continue
        offset = max(run.start() - _BEFORE, 0)
        window = text[offset : run.end() + _AFTER]
        for match in phonenumbers.PhoneNumberMatcher(window, region):
            start, end = offset + match.start, offset + match.end
            if _is_phone(text, start, match.raw_string):
                spans.add((start, end))
    return sorted(spans)


def _is_phone(text: str, start: int, number: str) -> bool:
    """Whether the valid phone number `number`, found at `start` of `text`, is meant as one."""
    if number.startswith("+"):
        return True
    before = text[max(start - _CUE_CHARS, 0) : start]
    if _LABEL.search(before):
        return False
    return bool(_PHONE_CUE.search(before)) or not number.isdigit()
