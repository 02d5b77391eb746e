"""What the generated spec states beyond each view: stable operationIds, every status the
server sends (401, 404, 412, 413, 429, 503, 304) with its headers, servers and licence.

One apispec plugin, so each view keeps its one success response and the shared behaviour
(keys, JWTs, rate limits, body limits, conditional GETs, the index lifecycle) is documented
once, where it is decided.
"""

from __future__ import annotations

from typing import Any

from apispec import BasePlugin

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
# (method, path): (operationId, description). Stable: generated clients name their functions
# after the operationIds.
OPERATIONS = {
    ("get", "/v1/snippets"): ("searchSnippets", "Free-text and filtered search over the "
                              "snippets; every hit carries its citation and caveats."),
    ("get", "/v1/snippets/{snippet_id}"): ("getSnippet", "One snippet by id, with the ids of "
                                           "the paragraphs before and after it."),
    ("get", "/v1/sources"): ("listSources", "The source articles and their metadata."),
    ("get", "/v1/sources/{source_id}"): ("getSource", "One source article's metadata and the "
                                         "ids of its snippets."),
    ("get", "/v1/conditions"): ("listConditions", "The condition vocabulary, with codes and "
                                "snippet counts."),
    ("get", "/v1/caveats"): ("listCaveats", "The caveat catalogue, for review."),
    ("get", "/v1/handout"): ("getHandout", "A patient handout of the chosen snippets as a FHIR "
                             "R4 DocumentReference."),
    ("get", "/v1/feedback"): ("listFeedback", "How often clinicians accepted, overrode or "
                              "recorded as given each snippet shown on a CDS Hooks card."),
    ("get", "/infobutton"): ("getInfobutton", "HL7 Infobutton URL-based knowledge request, "
                             "answered as MedlinePlus Connect answers: an Atom feed by default, "
                             "JSON with knowledgeResponseType=application/json."),
    ("get", "/cds-services"): ("getCdsServices", "CDS Hooks discovery (open, without a JWT)."),
    ("post", "/cds-services/{service_id}"): ("postCdsService", "CDS Hooks patient-view call: "
                                             "cards for the patient's problem-list conditions."),
    ("post", "/cds-services/{service_id}/feedback"): ("postCdsFeedback", "CDS Hooks feedback "
                                                      "on cards this service returned."),
    ("get", "/healthz"): ("getHealth", "Liveness probe: the process answers."),
    ("get", "/readyz"): ("getReadiness", "Readiness probe: the index is open, with its "
                         "version and counts."),
}
OPEN = {"/healthz", "/readyz"}  # no key, no rate limit
NOT_FROM_THE_INDEX = {"/healthz", "/readyz", "/cds-services", "/v1/feedback",
                      "/cds-services/{service_id}/feedback"}
NOT_CACHED = {"/v1/feedback"}
NOT_FOUND = {"/v1/snippets/{snippet_id}", "/v1/sources/{source_id}"}
# Relative: the server that serves the spec (Swagger UI's "try it out" calls it); its public
# base URL is SNIPPETS_PUBLIC_URL.
SERVERS = [{"url": "/", "description": "The server this spec is served by."}]
CONTACT = {"name": "The patient-education snippets team (see the README)"}
# No licence has been chosen for this API yet: say so rather than claim one.
LICENSE = {"name": "No licence granted (all rights reserved)",
           "identifier": "LicenseRef-All-Rights-Reserved"}

HEADERS = {
    "WWW-Authenticate": {"description": "The scheme to authenticate with: Bearer (an API key, "
                                        "or a CDS Client JWT on /cds-services).",
                         "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before trying again.",
                    "schema": {"type": "integer", "minimum": 0}},
    "X-RateLimit-Limit": {"description": "Requests allowed in the window.",
                          "schema": {"type": "integer", "minimum": 0}},
    "X-RateLimit-Remaining": {"description": "Requests left in the window.",
                              "schema": {"type": "integer", "minimum": 0}},
    "X-RateLimit-Reset": {"description": "When the window resets (Unix time, seconds).",
                          "schema": {"type": "number", "minimum": 0}},
    "ETag": {"description": "Weak validator of the answer (the index version and the URL).",
             "schema": {"type": "string"}},
}


def _headers(*names: str) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


RESPONSES = {
    "Unauthorized": {"description": "No valid API key (SNIPPETS_API_KEYS) or, on CDS Hooks "
                                    "calls, no valid CDS Client JWT (SNIPPETS_CDS_ISSUERS).",
                     "headers": _headers("WWW-Authenticate"), "content": PROBLEM},
    "NotFound": {"description": "The resource named in the path does not exist.",
                 "content": PROBLEM},
    "ContentTooLarge": {"description": "The request body is larger than "
                                       "SNIPPETS_MAX_BODY_BYTES.", "content": PROBLEM},
    "TooManyRequests": {"description": "Over the rate limit (SNIPPETS_RATE_LIMIT).",
                        "headers": _headers("Retry-After", "X-RateLimit-Limit",
                                            "X-RateLimit-Remaining", "X-RateLimit-Reset"),
                        "content": PROBLEM},
    "IndexUnavailable": {"description": "The index is not available (being built, damaged, "
                                        "or of another pipeline version).",
                         "headers": _headers("Retry-After"), "content": PROBLEM},
    "NotModified": {"description": "The answer sent with this ETag is still current "
                                   "(If-None-Match).", "headers": _headers("ETag")},
}


class SpecExtras(BasePlugin):
    def init_spec(self, spec) -> None:
        self.spec = spec
        for name, header in HEADERS.items():
            spec.components.header(name, header)
        for name, response in RESPONSES.items():
            spec.components.response(name, response)

    def operation_helper(self, path: str | None = None, operations: dict | None = None,
                         **kwargs: Any) -> None:
        for method, operation in (operations or {}).items():
            operation["operationId"], description = OPERATIONS[(method, path)]
            operation.setdefault("description", description)
            responses = operation.setdefault("responses", {})
            ok = responses.get(200) or responses.get("200") or {}
            content = ok.get("content", {}) if isinstance(ok, dict) else {}
            if "application/atom+xml" in content:
                # The default answer first: a generated client types the 200 by the first
                # media type it supports (openapi-python-client: map application/atom+xml
                # to text with its content_type_overrides, as the README shows).
                ok["content"] = dict(sorted(
                    content.items(), key=lambda item: item[0] != "application/atom+xml"))

            def add(status: str, name: str, responses: dict = responses) -> None:
                # flask-smorest keys the views' own responses by int.
                if status not in responses and int(status) not in responses:
                    responses[status] = {"$ref": f"#/components/responses/{name}"}

            if path not in OPEN and path != "/cds-services":
                add("401", "Unauthorized")
            if path in NOT_FOUND:
                add("404", "NotFound")
            if method == "post":
                add("413", "ContentTooLarge")
            if path not in OPEN:
                add("429", "TooManyRequests")
            if path not in NOT_FROM_THE_INDEX:
                add("503", "IndexUnavailable")
            if method == "get" and path.startswith(("/v1/", "/infobutton")) \
                    and path not in NOT_CACHED:
                add("304", "NotModified")
