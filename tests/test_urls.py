"""The shared link-shape check: what Hypereal answers, webhooks and redirects may carry as a link."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from bot.urls import MAX_URL_LENGTH, BadURL, ascii_host, join_location, parse_url, url_problem

BAD = {
    "https://evil.example\\@cdn.hypereal.tech/x": "backslash",  # browsers and yarl disagree on the host
    "https://cdn.hypereal.tech\\evil/x": "backslash",
    "https://xn--zz.example/x": "xn--",  # punycode that does not decode
    "https://xn--ls8h.la/x": "xn--",  # an emoji label: IDNA 2003 took it, IDNA 2008 does not
    "https://💩.la/x": "xn--",
    "https://user@cdn.hypereal.tech/x": "user name",
    "https://user:pw@cdn.hypereal.tech/x": "user name",
    "https://cdn.hypereal.tech/a b.png": "spaces",
    "https://cdn.hypereal.tech/a\nb.png": "control",  # yarl would silently drop the newline
    "https://cdn.hypereal.tech/\u202egnp.exe": "control",  # a bidi override
    "javascript:alert(1)": "absolute http",
    "/files/a.png": "absolute http",
    "//cdn.hypereal.tech/a.png": "absolute http",
    "ftp://cdn.hypereal.tech/a.png": "absolute http",
    "http://[::1": "cannot be parsed",
    "https://cdn.hypereal.tech:99999/a": "cannot be parsed",
    "https:///a.png": "no host",
    "https://a_b.example/x": "host name",
    "https://-cdn.example/x": "host name",
    "https://cdn.hypereal.tech/" + "a" * MAX_URL_LENGTH: "longer",
}


@pytest.mark.parametrize(("raw", "why"), list(BAD.items()))
def test_malformed_links_are_refused_in_words(raw: str, why: str) -> None:
    with pytest.raises(BadURL, match=why):
        parse_url(raw)
    assert why in (url_problem(raw) or "")


@pytest.mark.parametrize(
    "raw",
    [
        "https://cdn.hypereal.tech/outputs/a.png?sig=abc%20def#frag",
        "http://127.0.0.1:8765/files/a.png",
        "https://[2606:4700::1111]/a.png",
        "https://münchen.example/a.png",  # an international name is fine...
        "https://xn--mnchen-3ya.example/a.png",  # ...in either spelling
        "https://xn--ls8h-invalid/x",  # decodes under IDNA 2008 (to Canadian syllabics): a name, if an odd one
        "HTTPS://CDN.Hypereal.tech./a.png",
    ],
)
def test_sane_links_pass(raw: str) -> None:
    assert url_problem(raw) is None
    assert parse_url(raw).raw_host


@pytest.mark.parametrize("value", [None, 5, b"https://cdn.hypereal.tech/a", ["https://cdn.hypereal.tech/a"]])
def test_non_text_is_not_a_link(value: object) -> None:
    assert url_problem(value) == "it is not text"


def test_redirect_locations_are_resolved_then_checked() -> None:
    base = URL("https://cdn.hypereal.tech/out/a.png")
    assert str(join_location(base, "../b.png")) == "https://cdn.hypereal.tech/b.png"
    for location in ("http://[::1", "https://evil\\@cdn.hypereal.tech/", "//xn--zz.example/x", " /x"):
        with pytest.raises(BadURL):
            join_location(base, location)


def test_ascii_host_normalises_and_refuses() -> None:
    assert ascii_host("CDN.Hypereal.tech.") == "cdn.hypereal.tech"
    assert ascii_host("münchen.example") == "xn--mnchen-3ya.example"
    for bad in ("cdn.example:443", "a b.example", "*.example", "xn--zz.example"):
        with pytest.raises(BadURL):
            ascii_host(bad)


@given(st.text(max_size=80))
def test_never_raises_anything_but_bad_url(tail: str) -> None:
    for raw in (tail, f"https://{tail}", f"https://cdn.hypereal.tech/{tail}", f"http://{tail}@x/"):
        problem = url_problem(raw)  # parse_url raising anything but BadURL would escape here
        assert problem is None or problem.startswith("it")
