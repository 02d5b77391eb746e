"""Every request and response schema of the API, in one place."""

from __future__ import annotations

from flask import current_app
from marshmallow import Schema, ValidationError, fields, validate

from .codes import TOKEN_PATTERN, Coding, parse_token
from .config import Config


class ConfiguredMaxLength(validate.Length):
    """A maximum length that is the app's `setting`, read when a request is loaded (create_app
    may be given other limits than the environment's); the spec states Config's."""

    def __init__(self, setting: str, error: str):
        super().__init__(max=getattr(Config, setting), error=error)
        self.setting = setting

    def __call__(self, value):
        limit = current_app.config[self.setting]
        if len(value) > limit:
            raise ValidationError(self.error.format(max=limit))
        return value


class CodeToken(fields.String):
    """A FHIR token `system|code`, loaded as the Coding it names: the one place a request's
    code is parsed. The field's validators check the text as sent."""

    def _deserialize(self, value, attr, data, **kwargs) -> Coding:
        token = super()._deserialize(value, attr, data, **kwargs)
        # The validators' complaints and the reason the token does not parse, together.
        problems = []
        try:
            super()._validate(token)
        except ValidationError as exc:
            problems += exc.messages
        try:
            coding = parse_token(token)
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise ValidationError(problems)
        return coding

    def _validate(self, value: Coding) -> None:
        pass  # validated as text, in _deserialize


_REPEATED = ConfiguredMaxLength("MAX_REPEATED", "Give at most {max} values.")


def _doc(text: str, **extra) -> dict:
    return {"description": text, **extra}


# -- requests ---------------------------------------------------------------------------------

class SearchArgs(Schema):
    q = fields.String(
        load_default="",
        validate=ConfiguredMaxLength("MAX_QUERY_LENGTH", "Keep the query under {max} characters."),
        metadata=_doc('Plain words and "quoted phrases". Nothing here is query syntax. Optional '
                      "when browsing: without q, snippets come in source order, those that "
                      "mention a requested condition first.", example="sleep"))
    condition = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)), load_default=list,
        validate=_REPEATED,
        metadata=_doc("Condition slug from /v1/conditions; repeat for any of several. An "
                      "unknown slug is a 404 naming it.", example=["fibromyalgia"]))
    code = fields.List(
        CodeToken(validate=validate.Length(min=1, max=200), metadata={"pattern": TOKEN_PATTERN}),
        load_default=list,
        validate=_REPEATED,
        metadata=_doc("FHIR token system|code; system is a URI, an OID or icd10cm/snomed. "
                      "ICD-10-CM matches by prefix (F43.10 finds F43.1).",
                      example=["icd10cm|M79.7"]))
    source = fields.List(
        fields.String(validate=validate.Length(min=1, max=128)), load_default=list,
        validate=_REPEATED, metadata=_doc("Source id from /v1/sources; repeatable. An unknown "
                                          "id is a 404 naming it."))
    max_grade = fields.Float(
        load_default=None, allow_nan=False,
        validate=validate.Range(min=0, max=30),
        metadata=_doc("Highest Flesch-Kincaid reading grade to return (0-30)."))
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=50),
                           metadata=_doc("Results per page, 1-50."))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10_000),
                            metadata=_doc("Results to skip, 0-10000."))


# -- pieces of responses --------------------------------------------------------------------

class CaveatSchema(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True, metadata=_doc(
        "disclaimer, evidence, regulatory, safety, conflict or wording"))
    severity = fields.String(required=True, metadata=_doc("info or warning"))
    text = fields.String(required=True, metadata=_doc("For clinicians."))
    plain_text = fields.String(allow_none=True, metadata=_doc("For patients, where written."))
    source = fields.String(required=True, metadata=_doc("Where the caveat's facts come from."))


class CitationSchema(Schema):
    source_id = fields.String(required=True)
    title = fields.String(required=True)
    section = fields.String(allow_none=True, metadata=_doc("Heading the paragraph sits under."))
    paragraph = fields.Integer(required=True, metadata=_doc("1-based snippet number in source."))
    char_start = fields.Integer(required=True, metadata=_doc(
        "Start offset in the source text, in Unicode code points."))
    char_end = fields.Integer(required=True, metadata=_doc("End offset (exclusive)."))
    url = fields.String(allow_none=True, metadata=_doc("Null when the source URL is unknown."))
    retrieved = fields.String(allow_none=True, metadata=_doc("Date retrieved, or null."))
    text_sha256 = fields.String(required=True, metadata=_doc("SHA-256 of the snippet text."))


class AlsoInSchema(Schema):
    id = fields.String(required=True)
    source_id = fields.String(required=True)
    title = fields.String(allow_none=True)
    paragraph = fields.Integer(required=True)


class SnippetSchema(Schema):
    id = fields.String(required=True)
    text = fields.String(required=True)
    highlight = fields.String(required=True, metadata=_doc(
        "The text HTML-escaped, with <mark> around matched terms."))
    score = fields.Float(allow_none=True, metadata=_doc(
        "Relevance score; null when browsing without query text. Results are in the order "
        "of this score on every page."))
    matched = fields.List(fields.String(), required=True, metadata=_doc(
        "The query's concepts (words or phrases as typed) this snippet matches, in its text, "
        "section heading or article title, as written or through an expansion; empty when "
        "browsing."))
    conditions = fields.List(fields.String(), required=True)
    reading_grade = fields.Float(required=True, metadata=_doc("Flesch-Kincaid grade level."))
    lead_in = fields.String(allow_none=True, metadata=_doc(
        "The line that introduces a list item, when the snippet is one."))
    caveats = fields.List(fields.Nested(CaveatSchema), required=True)
    citation = fields.Nested(CitationSchema, required=True)
    also_in = fields.List(fields.Nested(AlsoInSchema), required=True, metadata=_doc(
        "The same paragraph in other sources (case, spacing and punctuation aside), collapsed "
        "into this result; at most 20 listed."))
    also_in_total = fields.Integer(required=True, metadata=_doc("How many other sources have "
                                                                "this paragraph."))


class SnippetDetailSchema(SnippetSchema):
    previous_id = fields.String(allow_none=True, metadata=_doc("Previous snippet in the source."))
    next_id = fields.String(allow_none=True, metadata=_doc("Next snippet in the source."))


class IndexInfoSchema(Schema):
    version = fields.String(required=True, metadata=_doc("Hash of the index inputs."))
    built_at = fields.String(required=True)


class NormalisedQuerySchema(Schema):
    q = fields.String(required=True)
    words = fields.List(fields.String(), required=True)
    phrases = fields.List(fields.String(), required=True)
    condition = fields.List(fields.String(), required=True, metadata=_doc(
        "Conditions searched: those given plus those the codes mapped to."))
    code = fields.List(fields.String(), required=True, metadata=_doc(
        "Codes given, as canonical-system-URI|code."))
    source = fields.List(fields.String(), required=True)
    max_grade = fields.Float(allow_none=True)


class SearchResponseSchema(Schema):
    query = fields.Nested(NormalisedQuerySchema, required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    match = fields.String(required=True, metadata=_doc(
        '"all" words matched, or "any" when fewer than a page (10) of snippets had them all '
        "and snippets with the query's subject and only some of its other words fill the "
        "list after those, scored below them."))
    results = fields.List(fields.Nested(SnippetSchema), required=True)
    suggestion = fields.String(allow_none=True, metadata=_doc(
        "A spelling correction of q when it finds nothing or little: only for words that are "
        "in no snippet and not English words, and only when the corrected q finds more."))
    not_found = fields.List(fields.String(), required=True, metadata=_doc(
        "Words of q (as typed) that no snippet matches, even through expansions. When one of "
        "them is what q is about, the answer is empty rather than filled with snippets that "
        "share only q's other words."))
    unmatched_codes = fields.List(fields.String(), required=True, metadata=_doc(
        "Well-formed codes no vocabulary entry covers."))
    caveats = fields.List(fields.Nested(CaveatSchema), required=True, metadata=_doc(
        "Response-level caveats: always the disclaimer."))
    index = fields.Nested(IndexInfoSchema, required=True)


class SourceSchema(Schema):
    id = fields.String(required=True)
    title = fields.String(required=True)
    publisher = fields.String(allow_none=True)
    url = fields.String(allow_none=True)
    retrieved = fields.String(allow_none=True)
    license = fields.String(allow_none=True)
    last_reviewed = fields.String(allow_none=True)
    focus = fields.String(allow_none=True, metadata=_doc("The condition the title is about."))
    text_sha256 = fields.String(required=True, metadata=_doc("SHA-256 of the source file text."))
    snippet_count = fields.Integer(required=True)


class SourceDetailSchema(SourceSchema):
    snippet_ids = fields.List(fields.String(), required=True)


class SourceListSchema(Schema):
    total = fields.Integer(required=True)
    sources = fields.List(fields.Nested(SourceSchema), required=True)
    index = fields.Nested(IndexInfoSchema, required=True)


class CodesSchema(Schema):
    icd10cm = fields.List(fields.String(), required=True)
    snomed = fields.List(fields.String(), required=True)


class ConditionSchema(Schema):
    slug = fields.String(required=True)
    label = fields.String(required=True)
    terms = fields.List(fields.String(), required=True)
    abbreviations = fields.List(fields.String(), required=True)
    codes = fields.Nested(CodesSchema, required=True)
    snippet_count = fields.Integer(required=True)


class ConditionListSchema(Schema):
    total = fields.Integer(required=True)
    codes_source = fields.String(allow_none=True)
    codes_last_checked = fields.String(allow_none=True, metadata=_doc(
        "When the codes were last checked against ICD-10-CM and SNOMED CT; null if never."))
    conditions = fields.List(fields.Nested(ConditionSchema), required=True)
    index = fields.Nested(IndexInfoSchema, required=True)


class CaveatRulesSchema(Schema):
    conditions = fields.List(fields.String(), required=True)
    sources = fields.List(fields.String(), required=True)
    snippets = fields.List(fields.String(), required=True)
    patterns = fields.List(fields.String(), required=True)
    context_patterns = fields.List(fields.String(), required=True, metadata=_doc(
        "Patterns that must all be found too (e.g. VNS for a VNS-specific caveat)."))


class CatalogueCaveatSchema(CaveatSchema):
    scope = fields.String(required=True, metadata=_doc("snippet, or response (once per answer)"))
    last_reviewed = fields.String(required=True)
    applies_to = fields.Nested(CaveatRulesSchema, required=True)
    snippet_count = fields.Integer(required=True)


class CaveatListSchema(Schema):
    total = fields.Integer(required=True)
    caveats = fields.List(fields.Nested(CatalogueCaveatSchema), required=True)
    index = fields.Nested(IndexInfoSchema, required=True)


class HealthSchema(Schema):
    status = fields.String(required=True)


class ReadySchema(Schema):
    status = fields.String(required=True, metadata={
        "description": "`ready`, or `degraded` while the shared rate-limit storage does not "
                       "answer (still 200: search works, limits are counted per worker)."})
    rate_limit_storage = fields.String(required=True, metadata={
        "description": "`ok`, `degraded` (not answering: counting per worker) or `off`."})
    version = fields.String(required=True)
    built_at = fields.String(required=True)
    generation = fields.String(required=True)
    sources = fields.Integer(required=True)
    snippets = fields.Integer(required=True)


class FieldErrorSchema(Schema):
    location = fields.String(required=True)
    parameter = fields.String(required=True)
    detail = fields.String(required=True)


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.List(fields.Nested(FieldErrorSchema))
