"""CDS Hooks: discovery, and a patient-view service that suggests patient-education snippets.

The service reads the patient's active problem-list Conditions from the request's `prefetch`
(it never calls back to the EHR's FHIR server), maps their codes to the vocabulary and returns
one card per snippet, a few per condition. Hook requests carry patient data: nothing of the body
is logged, stored or echoed in errors.
"""

from __future__ import annotations

import functools
from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import INCLUDE, Schema, fields, validate

from index.search import SearchQuery

from . import cds_auth, cds_cards, feedback, presenters
from .cds_cards import SUMMARY_LIMIT
from .codes import system_name

blp = Blueprint("cds_hooks", __name__, url_prefix="/cds-services",
                description="CDS Hooks 2.0 discovery and a patient-view service.")

SERVICE_ID = "patient-education"
PREFETCH_KEY = "conditions"
CARDS_PER_CONDITION = 2
MAX_CARDS = 10  # per call; past it, the last card links to the rest
MAX_CONDITIONS = 200  # entries read from one prefetch bundle
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


class BundleEntrySchema(Schema):
    class Meta:
        unknown = INCLUDE

    resource = fields.Dict(keys=fields.String(), metadata={
        "description": "A FHIR R4 resource; Conditions are read, anything else is skipped."})


class ConditionBundleSchema(Schema):
    class Meta:
        unknown = INCLUDE

    resourceType = fields.String(required=True, validate=validate.OneOf(["Bundle"]))
    entry = fields.List(fields.Nested(BundleEntrySchema), load_default=list)


class PrefetchSchema(Schema):
    class Meta:
        unknown = INCLUDE

    conditions = fields.Nested(ConditionBundleSchema, required=True, allow_none=True, metadata={
        "description": "The patient's active problem-list Conditions (the discovery prefetch "
                       "template). Missing or null: 412."})


class HookRequestSchema(Schema):
    class Meta:
        unknown = INCLUDE

    hook = fields.String(required=True, validate=validate.OneOf(["patient-view"]))
    hookInstance = fields.String(required=True, validate=validate.Length(min=1, max=100))
    context = fields.Nested(HookContextSchema, required=True)
    fhirServer = fields.String(validate=validate.Length(max=2000))
    prefetch = fields.Nested(PrefetchSchema, required=True, metadata={
        "description": "Required: this service does not query the FHIR server (missing: 412)."})


_REQUEST = HookRequestSchema()


class CardSourceSchema(Schema):
    label = fields.String(required=True)
    url = fields.String(required=True)


class CardLinkSchema(Schema):
    label = fields.String(required=True)
    url = fields.String(required=True)
    type = fields.String(required=True)


class ActionSchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf(["create"]))
    description = fields.String(required=True)
    resource = fields.Dict(keys=fields.String(), required=True, metadata={
        "description": "A FHIR R4 Communication (status completed, category instruction from "
                       "the communication-category code system, subject the patient, the "
                       "snippet's text, citation and page as payload)."})


class SuggestionSchema(Schema):
    uuid = fields.String(required=True)
    label = fields.String(required=True)
    actions = fields.List(fields.Nested(ActionSchema), required=True)


class CardSchema(Schema):
    uuid = fields.String(required=True, metadata={"description": "For feedback."})
    summary = fields.String(required=True, validate=validate.Length(max=SUMMARY_LIMIT))
    detail = fields.String(required=True, metadata={"description": "Markdown: the snippet, its "
                                                                   "caveats and its citation."})
    indicator = fields.String(required=True, validate=validate.OneOf(["info", "warning"]),
                              metadata={"description": "warning where the snippet carries a "
                                                       "safety or conflict caveat, else info"})
    source = fields.Nested(CardSourceSchema, required=True)
    selectionBehavior = fields.String(validate=validate.OneOf(["at-most-one"]), metadata={
        "description": "With suggestions."})
    suggestions = fields.List(fields.Nested(SuggestionSchema), metadata={
        "description": "Record as given to the patient (absent on the card that links to the "
                       "rest)."})
    links = fields.List(fields.Nested(CardLinkSchema), required=True)


# Namespaced, as CDS Hooks asks of extension properties.
NOT_COVERED_KEY = "snippets-not-covered"


class NotCoveredSchema(Schema):
    codes = fields.List(fields.String(), required=True, metadata={"description": (
        "Problem-list codings (system|code) no condition of ours covers: no card for them.")})
    reason = fields.String(required=True)


class ResponseExtensionSchema(Schema):
    not_covered = fields.Nested(NotCoveredSchema, data_key=NOT_COVERED_KEY)


class CardsSchema(Schema):
    cards = fields.List(fields.Nested(CardSchema), required=True)
    extension = fields.Nested(ResponseExtensionSchema, metadata={"description": (
        "CDS Hooks response extension: why some problem-list entries got no card.")})


def _codes_in(concept: Any) -> list[dict[str, Any]]:
    """The codings of a CodeableConcept, skipping anything that is not shaped like one."""
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return [c for c in codings if isinstance(c, dict)] if isinstance(codings, list) else []


def _codings(condition: dict[str, Any]) -> list[tuple[str, str]]:
    """(our system name, code) for each coding of an active, not-refuted Condition.
    Content an EHR got wrong is skipped, never a server error."""
    def status(key: str) -> set[str]:
        return {c["code"] for c in _codes_in(condition.get(key)) if isinstance(c.get("code"), str)}

    if status("clinicalStatus") & _INACTIVE or status("verificationStatus") & _NOT_TRUE:
        return []
    found = []
    for coding in _codes_in(condition.get("code")):
        system, value = coding.get("system"), coding.get("code")
        if isinstance(system, str) and isinstance(value, str) and system_name(system):
            found.append((system_name(system), value.strip()))
    return found


def _conditions(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The Condition resources of the prefetched Bundle (validated by ConditionBundleSchema)."""
    resources = [e.get("resource") for e in bundle["entry"][:MAX_CONDITIONS]]
    return [r for r in resources if isinstance(r, dict) and r.get("resourceType") == "Condition"]


def _precheck(view):
    """Answer 404 (unknown service) first; then, for a request whose required fields are
    right (else the schema's 400), 412 when the prefetch this service needs is missing."""
    @functools.wraps(view)
    def checked(self, service_id, *args, **kwargs):
        if service_id != SERVICE_ID:
            abort(404, message=f"no CDS service {service_id!r}; see GET /cds-services")
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            prefetch = body.get("prefetch")
            missing = prefetch is None or (isinstance(prefetch, dict)
                                           and prefetch.get(PREFETCH_KEY) is None)
            rest = {k: v for k, v in body.items() if k != "prefetch"}
            # A prefetch of the wrong shape is a 400, from the schema.
            if missing and not _REQUEST.validate(rest, partial=("prefetch",)):
                abort(412, message=f"prefetch.{PREFETCH_KEY} is required (this service does "
                                   "not query the FHIR server); send the discovery prefetch "
                                   "template")
        return view(self, *args, service_id=service_id, **kwargs)

    return checked


def _rank(snippet: dict[str, Any]) -> tuple[int, float]:
    # Fewest warning caveats first, then the easiest to read.
    warnings = sum(c["severity"] == "warning" for c in snippet["caveats"])
    return warnings, snippet["reading_grade"]


@blp.before_request
def _authenticated():
    """CDS Client JWTs (service/cds_auth.py) on service calls; discovery stays open."""
    if request.endpoint != "cds_hooks.Discovery":
        return cds_auth.check()
    return None


@blp.route("")
class Discovery(MethodView):
    @blp.response(200, DiscoverySchema)
    @blp.doc(operationId="getCdsServices")
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
    @_precheck
    @blp.arguments(HookRequestSchema, location="json", error_status_code=400)
    @blp.response(200, CardsSchema)
    @blp.alt_response(404, "NOT_FOUND")
    @blp.alt_response(412, "PRECONDITION_FAILED")
    @blp.doc(operationId="postCdsService")
    def post(self, hook_request, service_id):
        """patient-view hook: cards with snippets for the patient's problem-list conditions."""
        gen = presenters.generation()
        labels = {c["slug"]: c["label"] for c in gen.conditions}
        slugs: list[str] = []
        uncovered: list[str] = []
        for condition in _conditions(hook_request["prefetch"][PREFETCH_KEY]):
            for system, code in _codings(condition):
                found = gen.conditions_for_code(system, code)
                slugs += [s for s in found if s not in slugs]
                if not found and f"{system}|{code}" not in uncovered:
                    uncovered.append(f"{system}|{code}")
        context = hook_request["context"]
        cards, shown = [], set()
        for slug in slugs:
            hits = gen.search(SearchQuery(conditions=(slug,), limit=50)).hits
            fresh = [h for h in hits if h.id not in shown]
            # Snippets that name the condition; failing those, ones from an article about it.
            mentioning = [h for h in fresh if slug in h.record["mentions"]] or fresh
            snippets = sorted((presenters.snippet(gen, h) for h in mentioning), key=_rank)
            for snippet in snippets[:CARDS_PER_CONDITION]:
                shown.add(snippet["id"])  # one card per snippet, under the first condition
                cards.append((slug, snippet, cds_cards.card(snippet, labels[slug], context)))
        answered = cards if len(cards) <= MAX_CARDS else cards[:MAX_CARDS - 1]
        # Card uuid -> snippet, so that feedback can be counted per snippet (no patient data).
        feedback.store().remember_cards([(c["uuid"], snippet["id"], c["suggestions"][0]["uuid"])
                                         for _, snippet, c in answered])
        out = [c for _, _, c in answered]
        if len(answered) < len(cards):
            rest = {slug: labels[slug] for slug, _, _ in cards[len(answered):]}
            out.append(cds_cards.more_card(rest, len(cards), len(answered)))
        if uncovered:
            # Right or nothing: an uncovered condition gets no card, and the response says so.
            return {"cards": out, "extension": {"not_covered": {
                "codes": uncovered,
                "reason": "no snippets for these problem-list codes: they are in no condition "
                          "of our vocabulary (see /v1/conditions)"}}}
        return {"cards": out}
