"""The Infobutton feed (the JSON shape MedlinePlus Connect uses) written as an Atom document.

Whatever the request carried (a control character in `age.v.u`, a lone surrogate), the
document is well-formed XML: characters XML 1.0 does not allow become U+FFFD.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

ATOM_NS = "http://www.w3.org/2005/Atom"
EXT_NS = "urn:snippets:infobutton:1"  # our additions to the Atom entries
XML_NS = "http://www.w3.org/XML/1998/namespace"
_ATOM, _EXT, _LANG, _BASE = f"{{{ATOM_NS}}}", f"{{{EXT_NS}}}", f"{{{XML_NS}}}lang", \
    f"{{{XML_NS}}}base"
# Everything outside XML 1.0's Char production.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

ET.register_namespace("", ATOM_NS)
ET.register_namespace("snippets", EXT_NS)


def xml_safe(text: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(text))


def _attrs(values: dict[str, Any]) -> dict[str, str]:
    return {key: xml_safe(value) for key, value in values.items() if value is not None}


def _add(parent: ET.Element, tag: str, value: dict[str, str] | str | None = None,
         **attrs: Any) -> ET.Element:
    if isinstance(value, dict):
        attrs = {"type": value.get("type"), **attrs}
        value = value["_value"]
    el = ET.SubElement(parent, tag, _attrs(attrs))
    if value is not None:
        el.text = xml_safe(value)
    return el


def _caveats(parent: ET.Element, caveats: list[dict[str, Any]]) -> None:
    for caveat in caveats:
        _add(parent, f"{_EXT}caveat", caveat["text"],
             **{k: caveat[k] for k in ("id", "kind", "severity", "source")})


def atom(feed: dict[str, Any]) -> bytes:
    """The JSON feed as an Atom document, our citation and caveats in their own namespace."""
    root = ET.Element(f"{_ATOM}feed", _attrs({_BASE: feed["base"], _LANG: feed["lang"]}))
    _add(root, f"{_ATOM}title", feed["title"])
    _add(root, f"{_ATOM}subtitle", feed["subtitle"])
    author = _add(root, f"{_ATOM}author")
    _add(author, f"{_ATOM}name", feed["author"]["name"]["_value"])
    _add(author, f"{_ATOM}uri", feed["author"]["uri"]["_value"])
    _add(root, f"{_ATOM}updated", feed["updated"])
    _add(root, f"{_ATOM}id", feed["id"])
    for category in feed["category"]:
        _add(root, f"{_ATOM}category", **category)
    _caveats(root, feed["caveats"])
    for entry in feed["entry"]:
        el = _add(root, f"{_ATOM}entry", **{_LANG: entry["lang"]})
        _add(el, f"{_ATOM}title", entry["title"])
        for link in entry["link"]:
            _add(el, f"{_ATOM}link", **link)
        _add(el, f"{_ATOM}id", entry["id"])
        _add(el, f"{_ATOM}updated", entry["updated"])
        _add(el, f"{_ATOM}summary", entry["summary"])
        # Unknown values (null in JSON) are left out, not written as empty strings.
        _add(el, f"{_EXT}citation", **entry["citation"])
        _caveats(el, entry["caveats"])
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
