"""FHIR token parsing for the `code` parameter: `system|code`, system as URI, OID or short name.

What is accepted is defined once, by TOKEN_PATTERN; the OpenAPI spec publishes the same
pattern, so a client (or a fuzzer) and the server agree on what a valid token is. The rest of
this module only explains, in words, why a token was refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ICD10CM_URI = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10CM_OID = "2.16.840.1.113883.6.90"
SNOMED_URI = "http://snomed.info/sct"
SNOMED_OID = "2.16.840.1.113883.6.96"

SYSTEMS = {
    "icd10cm": "icd10cm",
    "icd-10-cm": "icd10cm",
    ICD10CM_URI: "icd10cm",
    ICD10CM_OID: "icd10cm",
    f"urn:oid:{ICD10CM_OID}": "icd10cm",
    "snomed": "snomed",
    "sct": "snomed",
    SNOMED_URI: "snomed",
    SNOMED_OID: "snomed",
    f"urn:oid:{SNOMED_OID}": "snomed",
}
CANONICAL_URI = {"icd10cm": ICD10CM_URI, "snomed": SNOMED_URI}
# Code formats, as ECMA-262-compatible regular expressions (they go into the spec too).
CODE_FORMAT = {
    "icd10cm": r"[A-Za-z][0-9][0-9A-Za-z](?:\.?[0-9A-Za-z]{1,4})?",
    "snomed": r"[1-9][0-9]{5,17}",
}
_CODE_FORMAT = {name: re.compile(f"^{pattern}$") for name, pattern in CODE_FORMAT.items()}


def _systems_of(name: str) -> str:
    # re.escape also escapes "-", and "\-" outside a class is not valid ECMA-262 in Unicode
    # mode (as JSON Schema validators and spec linters read patterns): escape only what needs it.
    return "|".join(re.sub(r"([.\\^$|?*+()\[\]{}])", r"\\\1", s)
                    for s, n in SYSTEMS.items() if n == name)


TOKEN_PATTERN = "^(?:" + "|".join(
    f"(?:{_systems_of(name)})\\|{CODE_FORMAT[name]}" for name in CODE_FORMAT) + ")$"
_TOKEN = re.compile(TOKEN_PATTERN)
ACCEPTED = "an ICD-10-CM or SNOMED CT system as URI, OID or short name (icd10cm, snomed)"


@dataclass(frozen=True)
class Coding:
    """A valid code: our short system name (icd10cm, snomed) and the code, normalised."""

    system: str
    code: str

    @property
    def token(self) -> str:
        """The canonical `system-URI|code` token, as the API echoes it."""
        return f"{CANONICAL_URI[self.system]}|{self.code}"


def system_name(system: str) -> str | None:
    """Our short name for a code system URI, OID or short name; None if we do not know it."""
    return SYSTEMS.get(system)


def parse_code(system: str, code: str) -> Coding:
    """Validate one code in a known system; ValueError says what is wrong."""
    name = system_name(system)
    if name is None:
        raise ValueError(f"unknown code system {system!r}; expected {ACCEPTED}")
    if not code:
        raise ValueError("the code is empty")
    if not _CODE_FORMAT[name].match(code):
        label = "an ICD-10-CM code such as M79.7" if name == "icd10cm" else \
            "a SNOMED CT concept id (6 to 18 digits)"
        raise ValueError(f"{code!r} is not {label}")
    return Coding(name, code.upper() if name == "icd10cm" else code)


def parse_token(token: str) -> Coding:
    """Parse `system|code` (FHIR token search syntax); ValueError says what is wrong."""
    if "|" not in token:
        raise ValueError(f"{token!r} has no code system: write system|code, e.g. icd10cm|M79.7")
    system, _, code = token.partition("|")
    if not system:
        raise ValueError(f"{token!r} has an empty code system: write system|code")
    coding = parse_code(system, code)
    if not _TOKEN.match(token):  # parse_code and the pattern agree; this guards that they do
        raise ValueError(f"{token!r} is not a valid system|code token")
    return coding
