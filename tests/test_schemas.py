"""Request schemas: codes are parsed as they are loaded, limits read from the app's config."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from service.codes import ICD10CM_URI, SNOMED_URI, Coding
from service.schemas import SearchArgs


def test_code_tokens_load_as_codings(make):
    with make().app_context():
        args = SearchArgs().load({"code": ["icd-10-cm|m79.7",
                                           "urn:oid:2.16.840.1.113883.6.96|203082005"]})
    assert args["code"] == [Coding("icd10cm", "M79.7"), Coding("snomed", "203082005")]
    assert [c.token for c in args["code"]] == [f"{ICD10CM_URI}|M79.7", f"{SNOMED_URI}|203082005"]


def test_a_refused_token_says_every_reason(make):
    with make().app_context(), pytest.raises(ValidationError) as refused:
        SearchArgs().load({"code": ["icd10cm|M79.7", ""]})
    assert refused.value.messages == {"code": {1: [
        "Length must be between 1 and 200.",
        "'' has no code system: write system|code, e.g. icd10cm|M79.7"]}}


def test_limits_are_the_app_config(make):
    with make(MAX_QUERY_LENGTH=5, MAX_REPEATED=1).app_context(), \
            pytest.raises(ValidationError) as refused:
        SearchArgs().load({"q": "sleepy", "source": ["a", "b"], "condition": ["a"]})
    assert refused.value.messages == {"q": ["Keep the query under 5 characters."],
                                      "source": ["Give at most 1 values."]}
