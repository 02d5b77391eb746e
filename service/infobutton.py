"""GET /infobutton: HL7 Infobutton URL-based requests, answered like MedlinePlus Connect.

An EHR already configured for MedlinePlus Connect sends the same parameters here and reads the
same feed: an Atom document by default, or the JSON shape (`_value` members) with
`knowledgeResponseType=application/json`, with our citation and caveats added to each entry.
Several search criteria may come in one request, the later ones with an index after the
attribute name (`mainSearchCriteria.v.c1`, `.v.cs1`, `.v.dn1`). Parameters we do not use
(taskContext, performer, ...) are accepted and ignored, as Infobutton requests carry many.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from typing import Any

from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from index.search import SearchQuery

from . import presenters
from .atom import atom
from .codes import ICD10CM_OID, SNOMED_OID, parse_code
from .errors import bad_parameter
from .infobutton_schemas import FeedSchema
from .links import public_base, public_url, snippet_page

blp = Blueprint("infobutton", __name__, description="HL7 Infobutton (MedlinePlus Connect "
                                                   "compatible) knowledge requests.")

OIDS = {ICD10CM_OID: "ICD-10-CM", SNOMED_OID: "SNOMED CT"}
CODE_CHARS = r"^[A-Za-z0-9][A-Za-z0-9.]{0,19}$"
LANGUAGE_TAG = r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,3}$"
MAX_ENTRIES = 5  # per search criterion
MAX_CRITERIA = 5
JSON_TYPE, XML_TYPE, ATOM_TYPE = "application/json", "text/xml", "application/atom+xml"
CRITERION = "mainSearchCriteria.v."
_SUFFIXED = re.compile(r"^mainSearchCriteria\.v\.(c|cs|dn)([0-9]{1,2})$")
_TITLE_WORDS = 8


# Optional parameters have no default: absent stays absent (read with .get), and the spec
# shows a plain optional string or enum rather than a nullable one.
def _text(key: str, description: str, max_length: int = 200) -> fields.String:
    return fields.String(data_key=key, metadata={"description": description},
                         validate=validate.Length(max=max_length))


def _choice(key: str, description: str, choices: list[str], what: str) -> fields.String:
    names = [re.sub(r"\W", "_", choice).upper() for choice in choices]
    return fields.String(data_key=key, metadata={"description": description,
                                                 "x-enum-varnames": names},
                         validate=validate.OneOf(choices, error=f"{{input!r}} is not {what}"))


class InfobuttonArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    code = fields.String(
        data_key="mainSearchCriteria.v.c",
        validate=validate.Regexp(CODE_CHARS, error="{input!r} is not a code (letters, digits "
                                                   "and dots, at most 20)"),
        metadata={"description": "Problem code, e.g. M79.7 (ICD-10-CM) or 203082005 (SNOMED "
                                 "CT); needs mainSearchCriteria.v.cs. A code or a display name "
                                 "is required. Further criteria: the same three parameters "
                                 "with an index, mainSearchCriteria.v.c1, .v.cs1, .v.dn1 ... "
                                 f"(at most {MAX_CRITERIA} criteria)."})
    code_system = fields.String(
        data_key="mainSearchCriteria.v.cs",
        validate=validate.OneOf(list(OIDS), error="unknown code system OID {input!r}; supported: "
                                                  f"{ICD10CM_OID} (ICD-10-CM), "
                                                  f"{SNOMED_OID} (SNOMED CT)"),
        metadata={"description": f"Code system OID: {ICD10CM_OID} (ICD-10-CM) or "
                                 f"{SNOMED_OID} (SNOMED CT).",
                  # Names for generated clients' enums (an OID is no identifier).
                  "x-enum-varnames": ["ICD10CM", "SNOMEDCT"]})
    display_name = _text("mainSearchCriteria.v.dn", "Display name; searched as free text when "
                                                    "there is no code or it is not covered.")
    recipient = _choice("informationRecipient", "PAT (patient: plain-language caveats) or PROV "
                                                "(provider, the default).", ["PAT", "PROV"],
                        "PAT or PROV")
    language = fields.String(
        data_key="informationRecipient.languageCode.c",
        validate=validate.Regexp(LANGUAGE_TAG, error="{input!r} is not a language code (e.g. "
                                                     "en, es)"),
        metadata={"description": "The reader's language. Our content is English only: for "
                                 "another language the feed says so in its subtitle."})
    response_type = _choice("knowledgeResponseType", f"{XML_TYPE} (Atom feed, the default, as "
                                                     f"MedlinePlus Connect) or {JSON_TYPE}.",
                            [XML_TYPE, JSON_TYPE], f"{XML_TYPE} or {JSON_TYPE}")
    gender = _text("patientPerson.administrativeGenderCode.c", "Accepted and echoed.", 20)
    age_value = fields.Float(data_key="age.v.v", allow_nan=False,
                             validate=validate.Range(min=0, max=200),
                             metadata={"description": "Patient age; accepted and echoed."})
    age_unit = _text("age.v.u", "Unit of age.v.v (e.g. a, mo); accepted and echoed.", 20)

    @validates_schema
    def _code_needs_its_system(self, data: dict[str, Any], **kwargs) -> None:
        if "code" in data and "code_system" not in data:
            raise ValidationError(f"Missing data: {CRITERION}c needs its code system",
                                  f"{CRITERION}cs")
        if "code_system" in data and "code" not in data and "display_name" not in data:
            raise ValidationError(f"Missing data: {CRITERION}cs needs a code", f"{CRITERION}c")


ARGS = InfobuttonArgs()


@dataclass
class Criterion:
    suffix: str  # "" for the first, else its index as sent
    code: str | None = None
    code_system: str | None = None
    display_name: str | None = None


def _criteria(args: dict[str, Any]) -> list[Criterion]:
    """The search criteria of the request: the unindexed one, then the indexed ones in order.
    Indexed parameters are checked with the same fields as the first ones."""
    found: dict[str, Criterion] = {}
    if any(k in args for k in ("code", "code_system", "display_name")):
        found[""] = Criterion("", args.get("code"), args.get("code_system"),
                              args.get("display_name"))
    fields_by_part = {"c": "code", "cs": "code_system", "dn": "display_name"}
    for name in request.args:
        match = _SUFFIXED.match(name)
        if not match:
            continue
        part, suffix = match.groups()
        field = ARGS.fields[fields_by_part[part]]
        try:
            value = field.deserialize(request.args[name])
        except ValidationError as exc:
            bad_parameter(name, " ".join(map(str, exc.messages)))
        setattr(found.setdefault(suffix, Criterion(suffix)), fields_by_part[part], value)
    if not found:
        bad_parameter(f"{CRITERION}c", f"Missing data: {CRITERION}c with {CRITERION}cs, or "
                                       f"{CRITERION}dn, is required")
    if len(found) > MAX_CRITERIA:
        bad_parameter(CRITERION + "c", f"at most {MAX_CRITERIA} search criteria per request")
    ordered = sorted(found.values(), key=lambda c: (c.suffix != "", int(c.suffix or 0)))
    for criterion in ordered[1:]:
        if criterion.code and not criterion.code_system:
            bad_parameter(f"{CRITERION}cs{criterion.suffix}", f"Missing data: "
                          f"{CRITERION}c{criterion.suffix} needs its code system")
        if not criterion.code and not criterion.display_name:
            bad_parameter(f"{CRITERION}c{criterion.suffix}", "Missing data: a code or a "
                          "display name is required")
    return ordered


def _caveat_for(entry: dict[str, Any], for_patient: bool) -> dict[str, Any]:
    text = entry["plain_text"] if for_patient and entry.get("plain_text") else entry["text"]
    return {"id": entry["id"], "kind": entry["kind"], "severity": entry["severity"],
            "text": text, "source": entry["source"]}


def _search(gen, criterion: Criterion) -> tuple[list, str]:
    """The hits for one criterion and what the feed says about it."""
    conditions, not_covered, label = [], "", ""
    if criterion.code:
        label = OIDS[criterion.code_system]
        try:
            coding = parse_code(criterion.code_system, criterion.code)
        except ValueError:
            not_covered = f"{criterion.code!r} is not a valid {label} code"
        else:
            conditions = gen.conditions_for_code(coding.system, coding.code)
            not_covered = f"{label} {coding.code} is not in our vocabulary"
    if conditions:
        hits = gen.search(SearchQuery(conditions=tuple(conditions), limit=MAX_ENTRIES)).hits
        why = f"snippets for {label} {criterion.code}"
        return hits, why if hits else f"no snippets found: {why}"
    text = " ".join((criterion.display_name or "").split())
    if not text:
        return [], f"no snippets: {not_covered} (see /v1/conditions)"
    why = (f"{not_covered}; searched the display name {text!r} instead" if not_covered
           else f"snippets for the display name {text!r}")
    # Right or nothing is the search's own rule: a display name whose subject no snippet
    # matches gets no entries, and the feed names the words that found nothing.
    result = gen.search(SearchQuery(text=text, limit=MAX_ENTRIES))
    if not result.hits:
        missing = (f"; no snippet matches {', '.join(map(repr, result.not_found))}"
                   if result.not_found else "")
        return [], f"no snippets found: {why}{missing}"
    return result.hits, why


def _categories(args: dict[str, Any]) -> list[dict[str, str]]:
    """Every received parameter we read, echoed the way MedlinePlus Connect echoes them."""
    echoed = []
    for name, field in ARGS.fields.items():
        value = args.get(name)
        if value is not None:
            term = f"{value:g}" if isinstance(value, float) else value
            echoed.append({"scheme": field.data_key, "term": term})
    echoed += [{"scheme": name, "term": request.args[name]} for name in request.args
               if _SUFFIXED.match(name)]
    return echoed


def _opening(text: str) -> str:
    words = text.split()
    opening = " ".join(words[:_TITLE_WORDS])
    return opening + ("\u2026" if len(words) > _TITLE_WORDS else "")


def _titles(snippets: list[dict[str, Any]]) -> list[str]:
    """Entry titles a person can tell apart: the section (or the article) and the paragraph's
    opening words; the paragraph number only where two would still read the same."""
    titles = []
    for snippet in snippets:
        where = snippet["citation"]["section"] or snippet["citation"]["title"]
        titles.append(f"{where}: {_opening(snippet['text'])}")
    for i, snippet in enumerate(snippets):
        if titles.count(titles[i]) > 1:
            titles[i] += f" (paragraph {snippet['citation']['paragraph']})"
    return titles


@blp.route("/infobutton")
class Infobutton(MethodView):
    @blp.arguments(ARGS, location="query", error_status_code=400)
    @blp.response(200, FeedSchema, description="The feed: Atom by default, JSON on request.")
    @blp.doc(operationId="getInfobutton", responses={200: {"content": {ATOM_TYPE: {"schema": {
        "type": "string", "description": "The same feed as an Atom document (RFC 4287)."}}}}})
    def get(self, args):
        """Infobutton knowledge request: snippets for problem codes or display names."""
        criteria = _criteria(args)
        gen = presenters.generation()
        for_patient = args.get("recipient") == "PAT"
        hits, reasons, seen = [], [], set()
        for criterion in criteria:
            found, why = _search(gen, criterion)
            reasons.append(why)
            hits += [h for h in found if h.id not in seen and not seen.add(h.id)]
        why = "; ".join(reasons)
        language = args.get("language")
        if language and language.split("-")[0].lower() != "en":
            why = (f"our content is in English only: no text in {language!r} is available; "
                   f"these entries are in English. {why}")
        feed = _feed(gen, args, hits, why, for_patient)
        if args.get("response_type") == JSON_TYPE:
            return {"feed": feed}
        return Response(atom(feed), mimetype=ATOM_TYPE)


def _feed(gen, args, hits, why: str, for_patient: bool) -> dict[str, Any]:
    updated = gen.manifest["built_at"]
    snippets = [presenters.snippet(gen, hit) for hit in hits]
    entries = []
    for snippet, title in zip(snippets, _titles(snippets), strict=True):
        page = snippet_page(snippet["id"])
        entries.append({
            "lang": "en",
            "title": {"_value": title, "type": "text"},
            "link": [
                {"href": page, "rel": "alternate", "type": "text/html", "hreflang": "en",
                 "title": title},
                {"href": public_url("snippets.SnippetById", snippet_id=snippet["id"]),
                 "rel": "related", "type": JSON_TYPE, "hreflang": "en",
                 "title": f"{title} (JSON, with citation and caveats)"},
            ],
            "id": {"_value": page},
            "updated": {"_value": updated},
            "summary": {"_value": f"<p>{html.escape(snippet['text'])}</p>", "type": "html"},
            "citation": snippet["citation"],
            "caveats": [_caveat_for(c, for_patient) for c in snippet["caveats"]],
        })
    base = public_base() + "/"
    return {
        "base": base,
        "lang": "en",
        "title": {"_value": "Patient-education snippets", "type": "text"},
        "subtitle": {"_value": why, "type": "text"},
        "author": {"name": {"_value": "Patient-education snippets service"},
                   "uri": {"_value": base}},
        "updated": {"_value": updated},
        "id": {"_value": f"urn:snippets:feed:{gen.version}:"
                         f"{hashlib.sha256(request.query_string).hexdigest()[:16]}"},
        "category": _categories(args),
        "entry": entries,
        "caveats": [_caveat_for(c, for_patient) for c in presenters.response_caveats(gen)],
    }
