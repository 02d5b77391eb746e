"""CDS Hooks cards for snippets, each with a "record as given to the patient" suggestion that
creates a FHIR R4 Communication.

`indicator` carries signal: `warning` only where the snippet carries a safety or conflict
caveat, `info` otherwise. When the user is the patient (or a related person) the caveats are
the plain-language texts.
"""

from __future__ import annotations

import uuid
from typing import Any

from .links import public_url, snippet_page

SUMMARY_LIMIT = 140
WARNING_KINDS = ("safety", "conflict")
# FHIR communication-category (terminology.hl7.org): "instruction", "The communication conveys
# an instruction." Patient education is instruction for the patient.
CATEGORY = {"system": "http://terminology.hl7.org/CodeSystem/communication-category",
            "code": "instruction", "display": "Instruction"}
LAY_USERS = ("Patient/", "RelatedPerson/")
SUGGESTION_LABEL = "Record as given to the patient"


def is_lay_user(user_id: str) -> bool:
    return user_id.startswith(LAY_USERS)


def indicator(snippet: dict[str, Any]) -> str:
    return "warning" if any(c["kind"] in WARNING_KINDS for c in snippet["caveats"]) else "info"


def summary(label: str, text: str) -> str:
    full = f"Patient education, {label}: {text}"
    if len(full) <= SUMMARY_LIMIT:
        return full
    return full[:SUMMARY_LIMIT - 1].rsplit(" ", 1)[0].rstrip(",;:") + "\u2026"


def caveat_text(caveat: dict[str, Any], lay: bool) -> str:
    return caveat["plain_text"] if lay and caveat.get("plain_text") else caveat["text"]


def citation_line(citation: dict[str, Any]) -> str:
    where = f"{citation['title']}"
    if citation["section"]:
        where += f", section \u201c{citation['section']}\u201d"
    where += (f", paragraph {citation['paragraph']} (characters {citation['char_start']}-"
              f"{citation['char_end']}, SHA-256 {citation['text_sha256'][:12]}\u2026)")
    return (f"{where}. URL: {citation['url'] or 'unknown'}; retrieved: "
            f"{citation['retrieved'] or 'unknown'}.")


def detail(snippet: dict[str, Any], lay: bool) -> str:
    quote = "\n".join(f"> {line}" for line in snippet["text"].splitlines())
    lines = [quote, ""]
    if snippet["caveats"]:
        lines.append("**Caveats**")
        lines += [f"- **{c['severity']}** ({c['kind']}): {caveat_text(c, lay)} "
                  f"_Source: {c['source']}_" for c in snippet["caveats"]]
        lines.append("")
    lines.append(f"**Source:** {citation_line(snippet['citation'])}")
    return "\n".join(lines)


def communication(snippet: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """A FHIR R4 Communication recording that the snippet was given to the patient."""
    citation = snippet["citation"]
    patient = {"reference": f"Patient/{context['patientId']}"}
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "status": "completed",
        "category": [{"coding": [dict(CATEGORY)]}],
        "subject": patient,
        "recipient": [patient],
        "topic": {"text": f"Patient education: {citation['title']}"},
        "payload": [
            {"contentString": snippet["text"]},
            {"contentString": f"Source: {citation_line(citation)}"},
            {"contentAttachment": {"contentType": "text/html", "language": "en",
                                   "url": snippet_page(snippet["id"]),
                                   "title": citation["title"]}},
        ],
    }
    if context.get("encounterId"):
        resource["encounter"] = {"reference": f"Encounter/{context['encounterId']}"}
    if context["userId"].startswith(("Practitioner/", "PractitionerRole/")):
        resource["sender"] = {"reference": context["userId"]}
    return resource


def card(snippet: dict[str, Any], label: str, context: dict[str, Any]) -> dict[str, Any]:
    citation = snippet["citation"]
    lay = is_lay_user(context["userId"])
    source_url = citation["url"] or public_url("pages.source_page",
                                               source_id=citation["source_id"])
    return {
        "uuid": str(uuid.uuid4()),
        "summary": summary(label, snippet["text"]),
        "detail": detail(snippet, lay),
        "indicator": indicator(snippet),
        "source": {"label": citation["title"], "url": source_url},
        "selectionBehavior": "at-most-one",
        "suggestions": [{
            "uuid": str(uuid.uuid4()),
            "label": SUGGESTION_LABEL,
            "actions": [{"type": "create",
                         "description": "Record in the chart that this patient-education "
                                        "paragraph was given to the patient.",
                         "resource": communication(snippet, context)}],
        }],
        "links": [{"label": "Open this paragraph, its caveats and its source",
                   "url": snippet_page(snippet["id"]), "type": "absolute"}],
    }


def more_card(rest: dict[str, str], total: int, shown: int) -> dict[str, Any]:
    """The last card when there are more than fit: links to the rest, per condition."""
    return {
        "uuid": str(uuid.uuid4()),
        "summary": f"{total - shown} more patient-education snippets for this patient's "
                   "conditions",
        "detail": "More paragraphs than fit here were found for: "
                  + ", ".join(rest.values()) + ". Each link opens them on the search page.",
        "indicator": "info",
        "source": {"label": "Patient-education snippets", "url": public_url("pages.search")},
        "links": [{"label": f"More for {label}", "url": public_url("pages.search",
                                                                    condition=slug),
                   "type": "absolute"} for slug, label in rest.items()],
    }
