"""CDS Hooks feedback (`POST /cds-services/{id}/feedback`) and the counts the content team
reads (`GET /v1/feedback`), kept in an embedded SQLite database under SNIPPETS_DATA_DIR.

What is stored holds no patient data: for each card we answered, its random uuid and the
snippet it showed (to attribute later feedback); for each snippet, how often clinicians
accepted it, overrode it (per override reason code) or recorded it as given to the patient,
and the day of the last feedback. Comments (`overrideReason.userComment`) are never stored:
they are free text and may name a patient.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import EXCLUDE, Schema, fields, validate

from . import cds_auth

blp = Blueprint("feedback", __name__, description="CDS Hooks feedback, and per-snippet outcome "
                                                  "counts for the content team.")
DATABASE = "feedback.sqlite3"
CARD_DAYS = 30  # how long a card's uuid is kept to attribute feedback to its snippet
MAX_FEEDBACK = 100  # entries in one feedback request
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cards (uuid TEXT PRIMARY KEY, snippet_id TEXT NOT NULL,
                                  suggestion TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS cards_created ON cards (created);
CREATE TABLE IF NOT EXISTS outcomes (snippet_id TEXT NOT NULL, outcome TEXT NOT NULL,
                                     reason TEXT NOT NULL DEFAULT '', count INTEGER NOT NULL,
                                     last_day TEXT NOT NULL,
                                     PRIMARY KEY (snippet_id, outcome, reason));
"""


class Store:
    """The feedback database: one connection per thread, opened on first use (after gunicorn
    has forked its workers)."""

    def __init__(self, data_dir: str):
        self.path = Path(data_dir) / DATABASE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with sqlite3.connect(self.path) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        db.close()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None or getattr(self._local, "pid", None) != os.getpid():
            db = sqlite3.connect(self.path, timeout=5, isolation_level=None)
            db.execute("PRAGMA busy_timeout=5000")
            self._local.db, self._local.pid = db, os.getpid()
        return db

    def remember_cards(self, cards: list[tuple[str, str, str]]) -> None:
        """(card uuid, snippet id, suggestion uuid) of the cards just answered."""
        now = time.time()
        db = self._db()
        with db:
            db.execute("BEGIN")
            db.executemany("INSERT OR IGNORE INTO cards VALUES (?, ?, ?, ?)",
                           [(*card, now) for card in cards])
            db.execute("DELETE FROM cards WHERE created < ?", (now - CARD_DAYS * 86400,))

    def record(self, entries: list[dict[str, Any]]) -> tuple[int, list[str]]:
        """Count each entry under its card's snippet; the card uuids we do not know."""
        db = self._db()
        recorded, unknown = 0, []
        with db:
            db.execute("BEGIN")
            for entry in entries:
                row = db.execute("SELECT snippet_id, suggestion FROM cards WHERE uuid = ?",
                                 (entry["card"],)).fetchone()
                if row is None:
                    unknown.append(entry["card"])
                    continue
                snippet_id, suggestion = row
                day = entry["outcomeTimestamp"][:10]
                counted = [(entry["outcome"], (entry.get("overrideReason") or {}).get(
                    "reason", {}).get("code", ""))]
                if any(s["id"] == suggestion for s in entry.get("acceptedSuggestions", [])):
                    counted.append(("given-to-patient", ""))
                for outcome, reason in counted:
                    db.execute(
                        "INSERT INTO outcomes VALUES (?, ?, ?, 1, ?) ON CONFLICT (snippet_id, "
                        "outcome, reason) DO UPDATE SET count = count + 1, "
                        "last_day = max(last_day, excluded.last_day)",
                        (snippet_id, outcome, reason[:64], day))
                recorded += 1
        return recorded, unknown

    def counts(self) -> list[dict[str, Any]]:
        rows = self._db().execute("SELECT snippet_id, outcome, reason, count, last_day FROM "
                                  "outcomes").fetchall()
        by_snippet: dict[str, dict[str, Any]] = {}
        for snippet_id, outcome, reason, count, day in rows:
            item = by_snippet.setdefault(snippet_id, {
                "snippet_id": snippet_id, "accepted": 0, "overridden": 0,
                "given_to_patient": 0, "override_reasons": {}, "last_feedback": day})
            item[outcome.replace("-", "_")] += count
            if outcome == "overridden" and reason:
                item["override_reasons"][reason] = item["override_reasons"].get(reason, 0) \
                    + count
            item["last_feedback"] = max(item["last_feedback"], day)
        for item in by_snippet.values():
            # Overridden more often than accepted, at least three times: worth a review.
            item["needs_review"] = item["overridden"] >= 3 and \
                item["overridden"] > item["accepted"]
        return sorted(by_snippet.values(), key=lambda i: (-i["overridden"], i["snippet_id"]))


def store() -> Store:
    return current_app.extensions["snippets_feedback"]


def init_app(app: Flask) -> None:
    app.extensions["snippets_feedback"] = Store(app.config["DATA_DIR"])


# -- schemas ------------------------------------------------------------------------------------

UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# ISO 8601 date-time, as FHIR's instant: seconds, optional fraction, a zone.
INSTANT = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
           r"(?:Z|[+-][0-9]{2}:[0-9]{2})$")


class CodingSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    system = fields.String(validate=validate.Length(max=500))
    code = fields.String(validate=validate.Length(min=1, max=64))
    display = fields.String(validate=validate.Length(max=500))


class OverrideReasonSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    reason = fields.Nested(CodingSchema)
    userComment = fields.String(validate=validate.Length(max=2000), metadata={
        "description": "Accepted and never stored (free text may name a patient)."})


class AcceptedSuggestionSchema(Schema):
    id = fields.String(required=True, validate=validate.Regexp(UUID, error="not a uuid"))


class FeedbackEntrySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    card = fields.String(required=True, validate=validate.Regexp(UUID, error="not a uuid"),
                         metadata={"description": "The uuid of the card acted on."})
    outcome = fields.String(required=True, validate=validate.OneOf(["accepted", "overridden"]))
    acceptedSuggestions = fields.List(fields.Nested(AcceptedSuggestionSchema),
                                      load_default=list)
    overrideReason = fields.Nested(OverrideReasonSchema)
    outcomeTimestamp = fields.String(required=True, validate=validate.Regexp(
        INSTANT, error="not an ISO 8601 date-time with a time zone"))


class FeedbackRequestSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    feedback = fields.List(fields.Nested(FeedbackEntrySchema), required=True,
                           validate=validate.Length(min=1, max=MAX_FEEDBACK))


class FeedbackRecordedSchema(Schema):
    recorded = fields.Integer(required=True)
    unknown_cards = fields.List(fields.String(), required=True, metadata={
        "description": "Card uuids this service does not know (never issued, or older than "
                       f"{CARD_DAYS} days); not counted."})


class SnippetOutcomesSchema(Schema):
    snippet_id = fields.String(required=True)
    accepted = fields.Integer(required=True)
    overridden = fields.Integer(required=True)
    given_to_patient = fields.Integer(required=True, metadata={
        "description": "Times the card's \u201crecord as given to the patient\u201d suggestion "
                       "was accepted."})
    override_reasons = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    last_feedback = fields.String(required=True, metadata={"description": "Day (YYYY-MM-DD)."})
    needs_review = fields.Boolean(required=True, metadata={
        "description": "Overridden at least three times and more often than accepted."})


class FeedbackCountsSchema(Schema):
    snippets = fields.List(fields.Nested(SnippetOutcomesSchema), required=True)


# -- views --------------------------------------------------------------------------------------

@blp.before_request
def _authenticated():
    if request.endpoint == "feedback.CdsFeedback":
        return cds_auth.check()
    return None


@blp.route("/cds-services/<string:service_id>/feedback")
class CdsFeedback(MethodView):
    @blp.arguments(FeedbackRequestSchema, location="json", error_status_code=400)
    @blp.response(200, FeedbackRecordedSchema)
    @blp.alt_response(404, "NOT_FOUND")
    @blp.doc(operationId="postCdsFeedback")
    def post(self, body, service_id):
        """CDS Hooks feedback: what the clinician did with the cards (accepted, overridden)."""
        from .cds_hooks import SERVICE_ID

        if service_id != SERVICE_ID:
            abort(404, message=f"no CDS service {service_id!r}; see GET /cds-services")
        recorded, unknown = store().record(body["feedback"])
        return {"recorded": recorded, "unknown_cards": unknown}


@blp.route("/v1/feedback")
class FeedbackCounts(MethodView):
    @blp.response(200, FeedbackCountsSchema)
    @blp.doc(operationId="listFeedback")
    def get(self):
        """Per-snippet CDS Hooks outcome counts, most overridden first (no patient data)."""
        # Counts change without a new index generation: never an ETag or a cached answer
        # (service/caching.py keys /v1/ answers by generation and URL through g.etag).
        g.pop("etag", None)
        return {"snippets": store().counts()}, 200, {"Cache-Control": "no-store"}
