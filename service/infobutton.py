"""GET /infobutton: HL7 Infobutton URL-based requests, answered like MedlinePlus Connect.

An EHR already configured for MedlinePlus Connect sends the same parameters here and reads the
same feed shape (JSON with `_value` members, or an Atom feed with `text/xml`), with our citation
and caveats added to each entry. Parameters we do not use (taskContext, performer, ...) are
accepted and ignored, as Infobutton requests carry many.
"""

from __future__ import annotations

import hashlib
import html
import xml.etree.ElementTree as ET
from typing import Any

from flask import Response, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, fields, validate

from index.search import SearchQuery

from . import presenters
from .codes import ICD10CM_OID, SNOMED_OID, parse_code
from .schemas import CitationSchema

blp = Blueprint("infobutton", __name__, description="HL7 Infobutton (MedlinePlus Connect "
                                                   "compatible) knowledge requests.")

ATOM_NS = "http://www.w3.org/2005/Atom"
EXT_NS = "urn:snippets:infobutton:1"  # our additions to the Atom entries
OIDS = {ICD10CM_OID: "ICD-10-CM", SNOMED_OID: "SNOMED CT"}
CODE_CHARS = r"^[A-Za-z0-9][A-Za-z0-9.]{0,19}$"
MAX_ENTRIES = 5
JSON_TYPE, XML_TYPE = "application/json", "text/xml"


# Optional parameters have no default: absent stays absent (read with .get), and the spec
# shows a plain optional string or enum rather than a nullable one.
def _text(key: str, description: str, max_length: int = 200) -> fields.String:
    return fields.String(data_key=key, metadata={"description": description},
                         validate=validate.Length(max=max_length))


def _choice(key: str, description: str, choices: list[str], what: str) -> fields.String:
    return fields.String(data_key=key, metadata={"description": description},
                         validate=validate.OneOf(choices, error=f"{{input!r}} is not {what}"))


class InfobuttonArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    # The code and its system are required: the display name is the fallback for a code we do
    # not cover, as MedlinePlus Connect treats it.
    code = fields.String(
        data_key="mainSearchCriteria.v.c", required=True,
        validate=validate.Regexp(CODE_CHARS, error="{input!r} is not a code (letters, digits "
                                                   "and dots, at most 20)"),
        metadata={"description": "Problem code, e.g. M79.7 (ICD-10-CM) or 203082005 (SNOMED CT)."})
    code_system = fields.String(
        data_key="mainSearchCriteria.v.cs", required=True,
        validate=validate.OneOf(list(OIDS), error="unknown code system OID {input!r}; supported: "
                                                  f"{ICD10CM_OID} (ICD-10-CM), "
                                                  f"{SNOMED_OID} (SNOMED CT)"),
        metadata={"description": f"Code system OID: {ICD10CM_OID} (ICD-10-CM) or "
                                 f"{SNOMED_OID} (SNOMED CT)."})
    display_name = _text("mainSearchCriteria.v.dn", "Display name; searched as free text when "
                                                    "the code is not covered.")
    recipient = _choice("informationRecipient", "PAT (patient: plain-language caveats) or PROV "
                                                "(provider, the default).", ["PAT", "PROV"],
                        "PAT or PROV")
    response_type = _choice("knowledgeResponseType", "application/json (default) or text/xml "
                                                     "(Atom feed).", [JSON_TYPE, XML_TYPE],
                            f"{JSON_TYPE} or {XML_TYPE}")
    gender = _text("patientPerson.administrativeGenderCode.c", "Accepted and echoed.", 20)
    age_value = fields.Float(data_key="age.v.v", allow_nan=False,
                             validate=validate.Range(min=0, max=200),
                             metadata={"description": "Patient age; accepted and echoed."})
    age_unit = _text("age.v.u", "Unit of age.v.v (e.g. a, mo); accepted and echoed.", 20)


class ValueSchema(Schema):
    _value = fields.String(data_key="_value", required=True)
    type = fields.String()


class AuthorSchema(Schema):
    name = fields.Nested(ValueSchema, required=True)
    uri = fields.Nested(ValueSchema, required=True)


class CategorySchema(Schema):
    scheme = fields.String(required=True)
    term = fields.String(required=True)


class LinkSchema(Schema):
    href = fields.String(required=True)
    rel = fields.String(required=True)
    type = fields.String(required=True)
    title = fields.String(required=True)


class EntryCaveatSchema(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True)
    severity = fields.String(required=True)
    text = fields.String(required=True, metadata={"description": "Plain-language text for PAT "
                                                                 "where written, else clinical."})
    source = fields.String(required=True)


class EntrySchema(Schema):
    lang = fields.String(required=True)
    title = fields.Nested(ValueSchema, required=True)
    link = fields.List(fields.Nested(LinkSchema), required=True)
    id = fields.Nested(ValueSchema, required=True)
    updated = fields.Nested(ValueSchema, required=True)
    summary = fields.Nested(ValueSchema, required=True)
    citation = fields.Nested(CitationSchema, required=True)
    caveats = fields.List(fields.Nested(EntryCaveatSchema), required=True)


class FeedBodySchema(Schema):
    base = fields.String(required=True)
    lang = fields.String(required=True)
    title = fields.Nested(ValueSchema, required=True)
    subtitle = fields.Nested(ValueSchema, required=True)
    author = fields.Nested(AuthorSchema, required=True)
    updated = fields.Nested(ValueSchema, required=True)
    id = fields.Nested(ValueSchema, required=True)
    category = fields.List(fields.Nested(CategorySchema), required=True)
    entry = fields.List(fields.Nested(EntrySchema), required=True)
    caveats = fields.List(fields.Nested(EntryCaveatSchema), required=True, metadata={
        "description": "Response-level caveats (the disclaimer)."})


class FeedSchema(Schema):
    feed = fields.Nested(FeedBodySchema, required=True)


def _value(text: str, kind: str | None = None) -> dict[str, str]:
    return {"_value": text, "type": kind} if kind else {"_value": text}


def _caveat_for(entry: dict[str, Any], for_patient: bool) -> dict[str, Any]:
    text = entry["plain_text"] if for_patient and entry.get("plain_text") else entry["text"]
    return {"id": entry["id"], "kind": entry["kind"], "severity": entry["severity"],
            "text": text, "source": entry["source"]}


def _parse(args: dict[str, Any]) -> tuple[str | None, str, str]:
    """(our system name and normalised code, or None if the code does not fit its system; the
    code as given; the system's name for people)."""
    system_label = OIDS[args["code_system"]]
    try:
        coding = parse_code(args["code_system"], args["code"])
    except ValueError:
        return None, args["code"], system_label
    return coding.system, coding.code, system_label


def _categories(args: dict[str, Any]) -> list[dict[str, str]]:
    """Every received parameter, echoed the way MedlinePlus Connect echoes them."""
    echoed = []
    for name, field in InfobuttonArgs().fields.items():
        value = args.get(name)
        if value is not None:
            term = f"{value:g}" if isinstance(value, float) else value
            echoed.append({"scheme": field.data_key, "term": term})
    return echoed


@blp.route("/infobutton")
class Infobutton(MethodView):
    @blp.arguments(InfobuttonArgs, location="query", error_status_code=400)
    @blp.response(200, FeedSchema)
    @blp.doc(responses={200: {"content": {XML_TYPE: {"schema": {
        "type": "string", "description": "The same feed as an Atom document."}}}}})
    def get(self, args):
        """Infobutton knowledge request: snippets for a problem code or display name."""
        system, code, system_label = _parse(args)
        gen = presenters.generation()
        for_patient = args.get("recipient") == "PAT"
        conditions = gen.conditions_for_code(system, code) if system else []
        not_covered = (f"{system_label} {code} is not in our vocabulary" if system else
                       f"{code!r} is not a valid {system_label} code")
        text = (args.get("display_name") or "").strip()
        if conditions:
            query = SearchQuery(conditions=tuple(conditions), limit=MAX_ENTRIES)
            why = f"snippets for {system_label} {code}"
        elif text:
            query = SearchQuery(text=text, limit=MAX_ENTRIES)
            why = f"{not_covered}; searched the display name {text!r} instead"
        else:
            query = None
            why = f"no snippets: {not_covered} (see /v1/conditions)"
        result = gen.search(query) if query else None
        hits = result.hits if result else []
        if result is not None and not hits:
            # Right or nothing: an uncovered display name gets an empty feed that says why.
            missing = (f"; no snippet matches {', '.join(map(repr, result.not_found))}"
                       if result.not_found else "")
            why = f"no snippets found: {why}{missing}"
        feed = self._feed(gen, args, hits, why, for_patient)
        if args.get("response_type") == XML_TYPE:
            return Response(_atom(feed), mimetype=XML_TYPE)
        return {"feed": feed}

    @staticmethod
    def _feed(gen, args, hits, why: str, for_patient: bool) -> dict[str, Any]:
        updated = gen.manifest["built_at"]
        entries = []
        for hit in hits:
            snippet = presenters.snippet(gen, hit)
            citation = snippet["citation"]
            link = url_for("snippets.SnippetById", snippet_id=hit.id, _external=True)
            title = citation["title"] + (f": {citation['section']}" if citation["section"]
                                         else "") + f" (paragraph {citation['paragraph']})"
            entries.append({
                "lang": "en",
                "title": _value(title, "text"),
                "link": [{"href": link, "rel": "alternate", "type": JSON_TYPE, "title": title}],
                "id": _value(link),
                "updated": _value(updated),
                "summary": _value(f"<p>{html.escape(hit.record['text'])}</p>", "html"),
                "citation": citation,
                "caveats": [_caveat_for(c, for_patient) for c in snippet["caveats"]],
            })
        return {
            "base": request.host_url,
            "lang": "en",
            "title": _value("Patient-education snippets", "text"),
            "subtitle": _value(why, "text"),
            "author": {"name": _value("Patient-education snippets service"),
                       "uri": _value(request.host_url)},
            "updated": _value(updated),
            "id": _value(f"urn:snippets:feed:{gen.version}:"
                         f"{hashlib.sha256(request.query_string).hexdigest()[:16]}"),
            "category": _categories(args),
            "entry": entries,
            "caveats": [_caveat_for(c, for_patient) for c in presenters.response_caveats(gen)],
        }


def _atom(feed: dict[str, Any]) -> bytes:
    """The JSON feed as an Atom document, our citation and caveats in their own namespace."""
    ET.register_namespace("", ATOM_NS)
    ET.register_namespace("snippets", EXT_NS)
    atom = f"{{{ATOM_NS}}}"
    ext = f"{{{EXT_NS}}}"
    root = ET.Element(f"{atom}feed", {"{http://www.w3.org/XML/1998/namespace}base": feed["base"],
                                      "{http://www.w3.org/XML/1998/namespace}lang": "en"})

    def text_el(parent, name, value):
        el = ET.SubElement(parent, f"{atom}{name}", {"type": value["type"]} if "type" in value
                           else {})
        el.text = value["_value"]
        return el

    text_el(root, "title", feed["title"])
    text_el(root, "subtitle", feed["subtitle"])
    author = ET.SubElement(root, f"{atom}author")
    ET.SubElement(author, f"{atom}name").text = feed["author"]["name"]["_value"]
    ET.SubElement(author, f"{atom}uri").text = feed["author"]["uri"]["_value"]
    text_el(root, "updated", feed["updated"])
    text_el(root, "id", feed["id"])
    for category in feed["category"]:
        ET.SubElement(root, f"{atom}category", category)

    def caveat_els(parent, caveats):
        for caveat in caveats:
            el = ET.SubElement(parent, f"{ext}caveat", {k: caveat[k] for k in
                                                       ("id", "kind", "severity", "source")})
            el.text = caveat["text"]

    caveat_els(root, feed["caveats"])
    for entry in feed["entry"]:
        el = ET.SubElement(root, f"{atom}entry", {"{http://www.w3.org/XML/1998/namespace}lang":
                                                  entry["lang"]})
        text_el(el, "title", entry["title"])
        for link in entry["link"]:
            ET.SubElement(el, f"{atom}link", link)
        text_el(el, "id", entry["id"])
        text_el(el, "updated", entry["updated"])
        text_el(el, "summary", entry["summary"])
        # Unknown values (null in JSON) are left out, not written as empty strings.
        citation = {k: str(v) for k, v in entry["citation"].items() if v is not None}
        ET.SubElement(el, f"{ext}citation", citation)
        caveat_els(el, entry["caveats"])
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
