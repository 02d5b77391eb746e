"""The Infobutton feed's JSON shape (MedlinePlus Connect's `_value` members), as schemas."""

from __future__ import annotations

from marshmallow import Schema, fields

from .schemas import CitationSchema


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
    rel = fields.String(required=True, metadata={
        "description": "alternate: the snippet's page for people (text/html); related: the "
                       "snippet in the JSON API."})
    type = fields.String(required=True)
    hreflang = fields.String(required=True)
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
