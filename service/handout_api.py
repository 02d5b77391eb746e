"""/v1/handout: the patient handout as a FHIR R4 DocumentReference, so an EHR can file it in
the chart. The handout's HTML (styles inline, no links back to this server) is the attachment.

No document type code is claimed: `type` is text only, as no code system entry for a patient
handout was checked for this project.
"""

from __future__ import annotations

import base64
import hashlib
import json

from flask import Response, g, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate

from . import handout, presenters
from .errors import bad_parameter

FHIR_JSON = "application/fhir+json"
HTML_TYPE = "text/html; charset=utf-8"
blp = Blueprint("handout", __name__, url_prefix="/v1/handout",
                description="A patient handout of chosen snippets, as a FHIR DocumentReference.")


class HandoutArgs(Schema):
    snippet = fields.List(
        fields.String(validate=validate.Length(min=1, max=128)), required=True,
        validate=validate.Length(min=1, max=handout.MAX_SNIPPETS, error=(
            f"Give 1 to {handout.MAX_SNIPPETS} snippet ids.")),
        metadata={"description": "Snippet id, repeatable: the handout's paragraphs in this "
                                 f"order (1 to {handout.MAX_SNIPPETS}). An unknown id is a 404 "
                                 "naming it.",
                  "example": ["003_c10700c13901ee51-72b1e422383a"]})


class CodeableTextSchema(Schema):
    text = fields.String(required=True)


class AttachmentSchema(Schema):
    contentType = fields.String(required=True, metadata={"description": "text/html; charset=utf-8"})
    language = fields.String(required=True, metadata={"description": "BCP 47: en"})
    data = fields.String(required=True, metadata={
        "description": "The handout page, base64-encoded.", "contentEncoding": "base64"})
    size = fields.Integer(required=True, metadata={"description": "Bytes of the decoded data."})
    hash = fields.String(required=True, metadata={
        "description": "SHA-1 of the decoded data, base64-encoded (as FHIR defines it)."})
    title = fields.String(required=True)
    creation = fields.String(required=True, metadata={"description": "When the handout was made "
                                                                      "(FHIR dateTime, UTC)."})


class ContentSchema(Schema):
    attachment = fields.Nested(AttachmentSchema, required=True)


class DocumentReferenceSchema(Schema):
    """A FHIR R4 DocumentReference (the elements this service fills)."""

    resourceType = fields.String(required=True, metadata={"enum": ["DocumentReference"]})
    status = fields.String(required=True, metadata={"enum": ["current"]})
    docStatus = fields.String(required=True, metadata={"enum": ["final"]})
    type = fields.Nested(CodeableTextSchema, required=True)
    date = fields.String(required=True, metadata={"description": "FHIR instant, UTC."})
    description = fields.String(required=True)
    content = fields.List(fields.Nested(ContentSchema), required=True,
                          validate=validate.Length(equal=1))


def document_reference(made: handout.Handout) -> dict:
    html = handout.render(made, standalone=True).encode("utf-8")
    when = made.created.strftime("%Y-%m-%dT%H:%M:%SZ")
    count = len(made.items)
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "final",
        "type": {"text": "Patient education handout"},
        "date": when,
        "description": (f"{made.title}: {count} paragraph{'' if count == 1 else 's'} from "
                        f"{len(made.sources)} article{'' if len(made.sources) == 1 else 's'}, "
                        "with plain-language caveats and citations"),
        "content": [{"attachment": {
            "contentType": HTML_TYPE,
            "language": "en",
            "data": base64.b64encode(html).decode("ascii"),
            "size": len(html),
            "hash": base64.b64encode(hashlib.sha1(html).digest()).decode("ascii"),
            "title": f"{made.title} ({made.date})",
            "creation": when,
        }}],
    }


@blp.route("")
class HandoutDocument(MethodView):
    @blp.arguments(HandoutArgs(), location="query", unknown=RAISE, error_status_code=400)
    @blp.response(200, DocumentReferenceSchema, content_type="application/json")
    @blp.doc(responses={200: {"content": {FHIR_JSON: {
        "schema": {"$ref": "#/components/schemas/DocumentReference"}}}}})
    @blp.alt_response(404, "NOT_FOUND")
    def get(self, args):
        """A patient handout of the given snippets, as a FHIR R4 DocumentReference."""
        gen = presenters.generation()
        try:
            made = handout.build(gen, args["snippet"])
        except handout.HandoutProblem as problem:
            bad_parameter("snippet", problem.detail, status=problem.status)
        # Each answer carries the time it was made: not one to keep and replay by URL.
        g.pop("etag", None)
        mimetype = request.accept_mimetypes.best_match(["application/json", FHIR_JSON])
        return Response(json.dumps(document_reference(made), ensure_ascii=False),
                        mimetype=mimetype or "application/json")
