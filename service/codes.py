"""FHIR token parsing for the `code` parameter: `system|code`, system as URI, OID or short name."""

from __future__ import annotations

import re

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
_CODE_FORMAT = {
    "icd10cm": re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$"),
    "snomed": re.compile(r"^[1-9][0-9]{5,17}$"),
}
ACCEPTED = "an ICD-10-CM or SNOMED CT system as URI, OID or short name (icd10cm, snomed)"


def system_name(system: str) -> str | None:
    """Our short name for a code system URI/OID/short name, or None if we do not know it."""
    return SYSTEMS.get(system.strip().lower() if not system.startswith("http") else system.strip())


def parse_code(system: str, code: str) -> tuple[str, str]:
    """Validate one code in a known system; returns (short system name, normalised code)."""
    name = system_name(system)
    if name is None:
        raise ValueError(f"unknown code system {system!r}; expected {ACCEPTED}")
    code = code.strip().upper() if name == "icd10cm" else code.strip()
    if not code:
        raise ValueError("the code is empty")
    if not _CODE_FORMAT[name].match(code):
        label = "an ICD-10-CM code such as M79.7" if name == "icd10cm" else \
            "a SNOMED CT concept id (6 to 18 digits)"
        raise ValueError(f"{code!r} is not {label}")
    return name, code


def parse_token(token: str) -> tuple[str, str]:
    """Parse `system|code` (FHIR token search syntax)."""
    if "|" not in token:
        raise ValueError(f"{token!r} has no code system: write system|code, e.g. icd10cm|M79.7")
    system, _, code = token.partition("|")
    if not system.strip():
        raise ValueError(f"{token!r} has an empty code system: write system|code")
    return parse_code(system, code)
