"""Absolute links from configuration: SNIPPETS_PUBLIC_URL, never the request's Host header.

An EHR opens the links in Infobutton entries and CDS Hooks cards for a person, and checks the
audience of the JWTs it signs against the same URLs, so they must not depend on what a client
(or an attacker) put in `Host`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, url_for


def check_public_url(app: Flask) -> None:
    """Refuse a SNIPPETS_PUBLIC_URL that cannot be the base of absolute links."""
    configured = (app.config.get("PUBLIC_URL") or "").strip()
    if not configured:
        return
    parts = urlsplit(configured)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or \
            parts.fragment:
        raise ValueError("SNIPPETS_PUBLIC_URL must be an absolute http(s) URL without query or "
                         f"fragment, e.g. https://snippets.example.org (got {configured!r})")


def public_base() -> str:
    """The base URL clients use, without a trailing slash."""
    configured = (current_app.config.get("PUBLIC_URL") or "").strip()
    return (configured or f"http://{current_app.config['BIND']}").rstrip("/")


def public_url(endpoint: str, **values) -> str:
    """The absolute URL of one of our endpoints, under the public base URL."""
    return public_base() + url_for(endpoint, **values)


def snippet_page(snippet_id: str) -> str:
    """The HTML page of one snippet: what links for people open."""
    return public_url("pages.snippet_page", snippet_id=snippet_id)
