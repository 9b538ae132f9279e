"""Database tables and the small records passed between pipeline stages.

This package imports nothing of the project, so scrapers and the library can both use it.
"""

from models.records import CallRecord, DeadlineRecord
from models.tables import (
    Base,
    Call,
    CallChange,
    ConsortiumPartner,
    ConsortiumSuggestion,
    Delivery,
    Embedding,
    Feedback,
    JobLock,
    Match,
    Member,
    Organisation,
    Participation,
    Project,
    ProjectField,
    Run,
)

__all__ = [
    "Base",
    "Call",
    "CallChange",
    "CallRecord",
    "ConsortiumPartner",
    "ConsortiumSuggestion",
    "DeadlineRecord",
    "Delivery",
    "Embedding",
    "Feedback",
    "JobLock",
    "Match",
    "Member",
    "Organisation",
    "Participation",
    "Project",
    "ProjectField",
    "Run",
]
