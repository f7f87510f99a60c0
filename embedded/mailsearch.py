"""Mailpit's search language, for the mail catcher's ``/api/v1/search`` and ``PUT`` with Search.

A query is split into words (``"quoted phrases"`` stay one word); every word must match. A word
starting with ``-`` or ``!`` must not match. Words are ``to:``, ``from:``, ``cc:``, ``bcc:``,
``reply-to:``, ``addressed:`` (any of those five), ``subject:``, ``message-id:``, ``tag:``,
``is:read``, ``is:unread``, ``is:tagged``, ``has:attachment(s)``, ``has:inline(s)``,
``after:``/``before:`` a date, ``larger:``/``smaller:`` a size (``2kb``, ``1.5m``), or plain
text matched against the sender, recipients, subject, body and attachment names. Matching
ignores case. A date or size Mailpit cannot read is ignored, as Mailpit ignores it. The catcher
has no tags: ``tag:`` and ``is:tagged`` match nothing (negated: everything).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_SEPARATORS = re.compile(r'(\r?\n|\t|>|<|"|,|;|\(|\))')
_SIZE = re.compile(r"^(\d+)(\.\d+)?\s?([a-z]{1,2})?$")
_UNITS = {"": 1, "k": 1024, "kb": 1024, "m": 1024 * 1024, "mb": 1024 * 1024}
_ADDRESS_FIELDS = {
    "to:": ("To",),
    "from:": ("From",),
    "cc:": ("Cc",),
    "bcc:": ("Bcc",),
    "reply-to:": ("ReplyTo",),
    "addressed:": ("To", "From", "Cc", "Bcc", "ReplyTo"),
}


@dataclass(frozen=True)
class Searchable:
    """What a query looks at in one message, computed once when it arrives."""

    addresses: dict[str, str]  # field -> its addresses as lower-case JSON text
    subject: str
    message_id: str
    text: str  # cleaned: headers, body text (or the HTML's text), attachment names
    created: datetime
    size: int
    attachments: int
    inline: int


def clean(text: str) -> str:
    """Mailpit's cleanString: separators to spaces, one space between words, lower case."""
    text = _SEPARATORS.sub(" ", text.replace("\ufeff", " "))
    return " ".join(text.split()).lower()


def searchable_text(headers: list[str], html_body: str, text_body: str, names: list[str]) -> str:
    """The text plain words search: the headers, the HTML's text (else the text part), and
    attachment file names."""
    body = html.unescape(re.sub(r"<[^>]*>", " ", html_body)).strip() if html_body else ""
    return clean(" ".join([*headers, body or text_body, *names]))


def address_json(people: list[dict[str, str]]) -> str:
    return json.dumps(people).lower()


def words(query: str) -> list[str]:
    """Mailpit's ArgsParser: split on spaces outside double quotes, quotes removed."""
    found, current, quoted = [], [], False
    for char in query:
        if char == '"':
            quoted = not quoted
        elif char == " " and not quoted:
            found.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    found.append("".join(current).strip())
    return [word.replace('"', "").strip() for word in found if word.replace('"', "").strip()]


Test = Callable[[Searchable, bool], bool]  # (message, is it read) -> matches


def compile_query(query: str, timezone: str | None = None) -> Test:
    """A predicate for ``query``; ``timezone`` (an IANA name) reads ``after:``/``before:``
    dates, the machine's own zone when empty or unknown, as in Mailpit."""
    zone = _zone(timezone)
    tests = [test for word in words(query) if (test := _term(word, zone)) is not None]
    return lambda item, read: all(test(item, read) for test in tests)


def _zone(name: str | None) -> tzinfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _term(word: str, zone: tzinfo | None) -> Test | None:
    if not clean(word):
        return None
    exclude = len(word) > 1 and word[0] in "-!"
    if exclude:
        word = word[1:]
    test = _positive(word, word.lower(), zone)
    if test is None or not exclude:
        return test
    return lambda item, read: not test(item, read)


def _positive(word: str, lower: str, zone: tzinfo | None) -> Test | None:
    for prefix, fields in _ADDRESS_FIELDS.items():
        if lower.startswith(prefix):
            value = clean(word[len(prefix) :])
            if not value:
                return None
            return lambda item, _: any(value in item.addresses[f] for f in fields)
    if lower.startswith("subject:"):
        value = lower[len("subject:") :]
        return (lambda item, _: value in item.subject.lower()) if value else None
    if lower.startswith("message-id:"):
        value = clean(word[len("message-id:") :])
        return (lambda item, _: value in item.message_id.lower()) if value else None
    if lower.startswith("tag:"):
        return (lambda item, _: False) if clean(word[4:]) else None
    flags: dict[str, Test] = {
        "is:read": lambda _, read: read,
        "is:unread": lambda _, read: not read,
        "is:tagged": lambda item, _: False,
        "has:inline": lambda item, _: item.inline > 0,
        "has:inlines": lambda item, _: item.inline > 0,
        "has:attachment": lambda item, _: item.attachments > 0,
        "has:attachments": lambda item, _: item.attachments > 0,
    }
    if lower in flags:
        return flags[lower]
    for prefix in ("after:", "before:"):
        if lower.startswith(prefix):
            return _date_test(prefix, clean(word[len(prefix) :]), zone)
    for prefix in ("larger:", "smaller:"):
        size = _bytes(clean(word[len(prefix) :])) if lower.startswith(prefix) else 0
        if size > 0:
            if prefix == "larger:":
                return lambda item, _: item.size > size
            return lambda item, _: item.size < size
    value = clean(lower)
    return lambda item, _: value in item.text


def _date_test(prefix: str, value: str, zone: tzinfo | None) -> Test | None:
    moment = _moment(value, zone)
    if moment is None:
        return None  # Mailpit ignores a date it cannot read
    if prefix == "after:":
        return lambda item, _: item.created >= moment
    return lambda item, _: item.created <= moment


def _moment(value: str, zone: tzinfo | None) -> datetime | None:
    """An ISO date or date and time; midnight for a date; in ``zone`` unless it names one."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.upper())
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(value), time())
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone) if zone else moment.astimezone()
    return moment


def _bytes(value: str) -> int:
    """Mailpit's sizeToBytes: ``2kb``, ``4MB``, ``1.5m`` or plain bytes; 0 when unreadable."""
    found = _SIZE.match(value.lower())
    if not found or found.group(3) not in (None, *_UNITS):
        return 0
    return int(float(found.group(1) + (found.group(2) or "")) * _UNITS[found.group(3) or ""])
