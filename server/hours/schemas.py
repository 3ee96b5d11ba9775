"""Volunteer-hours API shapes (DESIGN §5, §7). Hours are multiples of 0.5."""

from datetime import date, datetime
from typing import Annotated

from msgspec import Meta

from server.core.schemas import Input, Output

HalfHours = Annotated[float, Meta(ge=0, le=744, multiple_of=0.5, description="hours, a multiple of 0.5")]
Note = Annotated[str, Meta(max_length=200)]


class HoursDecisionIn(Input):
    """``approve`` false rejects the whole record (its points are reversed). ``hours`` (approve only)
    grants less than the computed hours; omitted = all of them."""

    approve: bool
    hours: Annotated[float, Meta(gt=0, le=744, multiple_of=0.5, description="a multiple of 0.5, ≤ computed_hours")] | None = None
    note: Note = ""


class CompleteCheckoutIn(Input):
    """Staff record a check-out the member forgot; never later than the activity's end."""

    activity_id: Annotated[int, Meta(ge=1)]
    member_id: Annotated[int, Meta(ge=1)]
    checked_out_at: Annotated[datetime, Meta(tz=True)]


class CorrectionIn(Input):
    hours: HalfHours
    reason: Annotated[str, Meta(min_length=2, max_length=200)]


class CorrectionDecisionIn(Input):
    approve: bool
    note: Note = ""


class CorrectionOut(Output):
    id: int
    hours_id: int
    member_id: int
    member_name: str
    activity_id: int
    activity_title: str
    old_hours: float
    new_hours: float
    reason: str
    status: str  # pending | approved | rejected
    requested_by: int
    requested_by_name: str | None
    requested_at: datetime
    decided_by: int | None
    decided_by_name: str | None
    decided_at: datetime | None
    note: str | None


class HoursOut(Output):
    id: int
    member_id: int
    member_name: str
    org_name: str
    activity_id: int
    activity_title: str
    activity_type: str
    station_id: int
    station_name: str
    activity_starts_at: datetime
    activity_ends_at: datetime
    checked_in_at: datetime
    checked_out_at: datetime | None
    checkout_method: str | None  # self | kiosk | staff_card | staff_manual (staff completed it)
    local_date: date
    computed_hours: float  # out − in, clipped to the schedule, rounded down to 0.5 h
    auto_hours: float  # approved automatically at check-out (8 h a member a local day)
    hours: float  # what the record counts now (approved part; 0 when rejected)
    pending_hours: float  # waiting for review (computed − counted while status is pending)
    status: str  # approved | pending | rejected
    locked: bool
    locks_at: datetime
    points: float  # net points from this record (ledger, reversals included)
    decided_by: int | None
    decided_by_name: str | None
    decided_at: datetime | None
    note: str | None
    correction_pending: bool
    created_at: datetime


class HoursDetailOut(HoursOut):
    corrections: list[CorrectionOut]


class MyHoursOut(Output):
    year: int
    total_hours: float  # counted hours of the year (approved parts)
    pending_hours: float
    records: int
    items: list[HoursOut]
