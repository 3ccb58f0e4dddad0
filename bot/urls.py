"""The one URL-shape check for links that come from outside (Hypereal answers, webhooks, redirects).

Both the Hypereal models (``bot.hypereal.models``) and the downloader (``bot.download``) use it, so a link
the models accept is a link the downloader can parse, and a malformed one is refused in words instead of
escaping as a ``ValueError``/``UnicodeError`` from yarl or the IDNA codec.

A sane link is: absolute ``http``/``https``; at most :data:`MAX_URL_LENGTH` characters; no whitespace,
control or invisible formatting characters anywhere (yarl silently drops a newline, so we look at the raw
text); no backslash anywhere (RFC 3986 never allows one unencoded, and browsers read it as ``/`` in the
authority, so ``https://evil.example\\@cdn/`` means different hosts to different parsers); no userinfo
(``user@host``); a port in range; and a host that is an IP literal or a valid ASCII/IDNA host name whose
``xn--`` labels decode under IDNA 2008 (the ``idna`` package, stricter than the stdlib's IDNA 2003 codec).

This says nothing about *where* a link may point: the allow-list and the private-address rules are
the downloader's (``bot.download.AllowList``).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

import idna
from yarl import URL

MAX_URL_LENGTH = 2048
MAX_HOST_LENGTH = 253
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE)
# Unicode categories never allowed in a link: controls, invisible format characters (bidi overrides,
# zero-width joiners), surrogates, private use, unassigned, and every kind of space or line separator.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


class BadURL(ValueError):
    """A link that is malformed or unsafe to parse; ``str(exc)`` says why, in words fit for a member."""


def parse_url(raw: object) -> URL:
    """The parsed link when it has a sane shape (see the module docstring); raises :class:`BadURL` otherwise."""
    if not isinstance(raw, str):
        raise BadURL("it is not text")
    _check_text(raw)
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise BadURL("it is not an absolute http(s) link")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in authority:
        raise BadURL("it carries a user name or password (user@host)")
    try:
        url = URL(raw)
        host = url.raw_host
        _ = url.port  # yarl checks the port's range only when asked
    except (ValueError, UnicodeError):
        raise BadURL("it cannot be parsed as a link") from None
    if not host:
        raise BadURL("it has no host")
    check_host(host)
    return url


def url_problem(raw: object) -> str | None:
    """Why ``raw`` is not a sane absolute http(s) link, or None when it is one."""
    try:
        parse_url(raw)
    except BadURL as exc:
        return str(exc)
    return None


def join_location(base: URL, location: str) -> URL:
    """Resolve a redirect's ``Location`` against the URL that answered it; raises :class:`BadURL`."""
    _check_text(location)
    try:
        joined = base.join(URL(location))
    except (ValueError, UnicodeError):
        raise BadURL("it redirected to a link that cannot be parsed") from None
    # A relative Location is fine; the link it leads to must pass the full check.
    return parse_url(str(joined))


def check_host(host: str) -> None:
    """Raise :class:`BadURL` unless ``host`` (ASCII, as ``URL.raw_host`` gives it) is an IP or a valid host name."""
    if _is_ip_literal(host):
        return
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > MAX_HOST_LENGTH or not name.isascii():
        raise BadURL("its host name is not valid")
    for label in name.split("."):
        if not _LABEL.fullmatch(label):
            raise BadURL("its host name is not valid")
        if label[:4].lower() == "xn--":
            _check_a_label(label)


def ascii_host(host: str) -> str:
    """``host`` in its lower-case ASCII (punycode) form, as links carry it; raises :class:`BadURL`."""
    try:
        raw_host = URL.build(scheme="https", host=host.strip().rstrip(".")).raw_host
    except (ValueError, UnicodeError):
        raise BadURL("its host name is not valid") from None
    if not raw_host:
        raise BadURL("it has no host")
    check_host(raw_host)
    return raw_host.lower()


def _check_text(raw: str) -> None:
    if len(raw) > MAX_URL_LENGTH:
        raise BadURL(f"it is longer than {MAX_URL_LENGTH} characters")
    if "\\" in raw:
        raise BadURL("it contains a backslash")
    if any(unicodedata.category(char) in _FORBIDDEN_CATEGORIES for char in raw):
        raise BadURL("it contains spaces or control characters")


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def _check_a_label(label: str) -> None:
    """A punycode label must decode under IDNA 2008 (``xn--zz`` and emoji labels do not)."""
    try:
        idna.decode(label)
    except (idna.IDNAError, UnicodeError, ValueError):
        raise BadURL("its host name has an invalid international (xn--) label") from None
