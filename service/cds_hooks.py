"""CDS Hooks: discovery, and a patient-view service that suggests patient-education snippets.

The service reads the patient's active problem-list Conditions from the request's `prefetch`
(it never calls back to the EHR's FHIR server), maps their codes to the vocabulary and returns
one card per snippet, a few per condition. Hook requests carry patient data: nothing of the body
is logged, stored or echoed in errors.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import INCLUDE, Schema, fields, validate

from index.search import SearchQuery

from . import presenters
from .codes import system_name
from .errors import bad_parameter

blp = Blueprint("cds_hooks", __name__, url_prefix="/cds-services",
                description="CDS Hooks 2.0 discovery and a patient-view service.")

SERVICE_ID = "patient-education"
PREFETCH_KEY = "conditions"
CARDS_PER_CONDITION = 2
MAX_CONDITIONS = 200  # entries read from one prefetch bundle
SUMMARY_LIMIT = 140
_INACTIVE = {"inactive", "remission", "resolved"}
_NOT_TRUE = {"refuted", "entered-in-error"}


class PrefetchTemplateSchema(Schema):
    conditions = fields.String(required=True)


class ServiceSchema(Schema):
    hook = fields.String(required=True)
    id = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    prefetch = fields.Nested(PrefetchTemplateSchema, required=True)


class DiscoverySchema(Schema):
    services = fields.List(fields.Nested(ServiceSchema), required=True)


class HookContextSchema(Schema):
    class Meta:
        unknown = INCLUDE

    userId = fields.String(required=True, validate=validate.Length(min=1, max=256))
    patientId = fields.String(required=True, validate=validate.Length(min=1, max=256))
    encounterId = fields.String(validate=validate.Length(max=256))


class HookRequestSchema(Schema):
    class Meta:
        unknown = INCLUDE

    hook = fields.String(required=True, validate=validate.Length(min=1, max=100))
    hookInstance = fields.String(required=True, validate=validate.Length(min=1, max=100))
    context = fields.Nested(HookContextSchema, required=True)
    fhirServer = fields.String(validate=validate.Length(max=2000))
    prefetch = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True),
                           allow_none=True, metadata={
                               "description": "conditions: a FHIR R4 Bundle of Condition "
                                              "resources (the discovery prefetch template)."})


class CardSourceSchema(Schema):
    label = fields.String(required=True)
    url = fields.String(required=True)


class CardLinkSchema(Schema):
    label = fields.String(required=True)
    url = fields.String(required=True)
    type = fields.String(required=True)


class CardSchema(Schema):
    uuid = fields.String(required=True)
    summary = fields.String(required=True, validate=validate.Length(max=SUMMARY_LIMIT))
    detail = fields.String(required=True, metadata={"description": "Markdown: the snippet, its "
                                                                   "caveats and its citation."})
    indicator = fields.String(required=True, metadata={"description": "info, or warning when "
                                                                      "a caveat is a warning"})
    source = fields.Nested(CardSourceSchema, required=True)
    links = fields.List(fields.Nested(CardLinkSchema), required=True)


class CardsSchema(Schema):
    cards = fields.List(fields.Nested(CardSchema), required=True)


def _codings(condition: dict[str, Any]) -> list[tuple[str, str]]:
    """(our system name, code) for each coding of an active, not-refuted Condition."""
    def status(key: str) -> set[str]:
        concept = condition.get(key)
        codings = concept.get("coding") if isinstance(concept, dict) else None
        return {c.get("code") for c in codings or [] if isinstance(c, dict)}

    if status("clinicalStatus") & _INACTIVE or status("verificationStatus") & _NOT_TRUE:
        return []
    code = condition.get("code")
    found = []
    for coding in (code.get("coding") if isinstance(code, dict) else None) or []:
        if not isinstance(coding, dict):
            continue
        system, value = coding.get("system"), coding.get("code")
        if isinstance(system, str) and isinstance(value, str) and system_name(system):
            found.append((system_name(system), value.strip()))
    return found


def _conditions(bundle: Any) -> list[dict[str, Any]]:
    """The Condition resources of a prefetched Bundle (or a single Condition)."""
    if not isinstance(bundle, dict) or "resourceType" not in bundle:
        bad_parameter("prefetch.conditions", "must be a FHIR Bundle of Condition resources",
                      location="json")
    if bundle["resourceType"] == "Condition":
        return [bundle]
    if bundle["resourceType"] != "Bundle":
        bad_parameter("prefetch.conditions", f"expected a Bundle, got resourceType "
                                             f"{str(bundle['resourceType'])[:40]!r}",
                      location="json")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        bad_parameter("prefetch.conditions", "Bundle.entry must be a list", location="json")
    resources = [e.get("resource") for e in entries[:MAX_CONDITIONS] if isinstance(e, dict)]
    return [r for r in resources if isinstance(r, dict) and r.get("resourceType") == "Condition"]


def _summary(label: str, text: str) -> str:
    summary = f"Patient education, {label}: {text}"
    if len(summary) <= SUMMARY_LIMIT:
        return summary
    return summary[:SUMMARY_LIMIT - 1].rsplit(" ", 1)[0].rstrip(",;:") + "\u2026"


def _detail(snippet: dict[str, Any]) -> str:
    citation = snippet["citation"]
    quote = "\n".join(f"> {line}" for line in snippet["text"].splitlines())
    lines = [quote, ""]
    if snippet["caveats"]:
        lines.append("**Caveats**")
        lines += [f"- **{c['severity']}** ({c['kind']}): {c['text']} _Source: {c['source']}_"
                  for c in snippet["caveats"]]
        lines.append("")
    where = f"{citation['title']}"
    if citation["section"]:
        where += f", section \u201c{citation['section']}\u201d"
    where += (f", paragraph {citation['paragraph']} (characters {citation['char_start']}-"
              f"{citation['char_end']}, SHA-256 {citation['text_sha256'][:12]}\u2026)")
    lines.append(f"**Source:** {where}. URL: {citation['url'] or 'unknown'}; retrieved: "
                 f"{citation['retrieved'] or 'unknown'}.")
    return "\n".join(lines)


def _rank(snippet: dict[str, Any]) -> tuple[int, float]:
    # Fewest warning caveats first, then the easiest to read.
    warnings = sum(c["severity"] == "warning" for c in snippet["caveats"])
    return warnings, snippet["reading_grade"]


@blp.route("")
class Discovery(MethodView):
    @blp.response(200, DiscoverySchema)
    def get(self):
        """CDS Hooks discovery: the services this server offers."""
        return {"services": [{
            "hook": "patient-view",
            "id": SERVICE_ID,
            "title": "Patient-education snippets",
            "description": "Short, cited, caveated patient-education paragraphs for the "
                           "patient's active problem-list conditions.",
            "prefetch": {PREFETCH_KEY: "Condition?patient={{context.patientId}}"
                                       "&category=problem-list-item&clinical-status=active"},
        }]}


@blp.route("/<string:service_id>")
class PatientView(MethodView):
    @blp.arguments(HookRequestSchema, location="json", error_status_code=400)
    @blp.response(200, CardsSchema)
    @blp.alt_response(404, "NOT_FOUND")
    @blp.alt_response(412, "PRECONDITION_FAILED")
    def post(self, hook_request, service_id):
        """patient-view hook: cards with snippets for the patient's problem-list conditions."""
        if service_id != SERVICE_ID:
            abort(404, message=f"no CDS service {service_id!r}; see GET /cds-services")
        if hook_request["hook"] != "patient-view":
            bad_parameter("hook", f"this service answers patient-view, not "
                                  f"{hook_request['hook'][:40]!r}", location="json")
        prefetch = hook_request.get("prefetch") or {}
        if prefetch.get(PREFETCH_KEY) is None:
            abort(412, message=f"prefetch.{PREFETCH_KEY} is required (this service does not "
                               "query the FHIR server); send the discovery prefetch template")
        gen = presenters.generation()
        labels = {c["slug"]: c["label"] for c in gen.conditions}
        slugs: list[str] = []
        for condition in _conditions(prefetch[PREFETCH_KEY]):
            for system, code in _codings(condition):
                slugs += [s for s in gen.conditions_for_code(system, code) if s not in slugs]
        cards = []
        for slug in slugs:
            hits = gen.search(SearchQuery(conditions=(slug,), limit=50)).hits
            mentioning = [h for h in hits if slug in h["mentions"]] or hits
            snippets = sorted((presenters.snippet(gen, h) for h in mentioning), key=_rank)
            for snippet in snippets[:CARDS_PER_CONDITION]:
                cards.append(self._card(snippet, labels[slug]))
        return {"cards": cards}

    @staticmethod
    def _card(snippet: dict[str, Any], label: str) -> dict[str, Any]:
        citation = snippet["citation"]
        snippet_url = url_for("snippets.SnippetById", snippet_id=snippet["id"], _external=True)
        source_url = citation["url"] or url_for("sources.SourceById",
                                                source_id=citation["source_id"], _external=True)
        warning = any(c["severity"] == "warning" for c in snippet["caveats"])
        return {
            "uuid": str(uuid.uuid4()),
            "summary": _summary(label, snippet["text"]),
            "detail": _detail(snippet),
            "indicator": "warning" if warning else "info",
            "source": {"label": citation["title"], "url": source_url},
            "links": [{"label": "This snippet in the snippets API", "url": snippet_url,
                       "type": "absolute"}],
        }
