from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta

from server.core.schemas import Input, Output


class LeaveIn(Input):
    reason: Annotated[str, Meta(min_length=1, max_length=200)]
    member_id: Annotated[int, Meta(ge=1)] | None = None  # staff/secretary asking on a member's behalf


class LeaveDecisionIn(Input):
    approve: bool
    note: Annotated[str, Meta(max_length=200)] = ""


class LeaveOut(Output):
    id: int
    activity_id: int
    activity_title: str
    activity_starts_at: datetime
    member_id: int
    member_name: str
    org_name: str
    reason: str
    status: Literal["pending", "approved", "rejected", "withdrawn"]
    created_at: datetime
    decided_at: datetime | None
    note: str | None
    points_restored: float = 0.0
