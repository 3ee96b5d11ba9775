from datetime import datetime
from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from server.core.schemas import Input, Output

ActivityType = Literal[
    "branch_meeting",  # 支部党员大会
    "committee_meeting",  # 支委会
    "group_meeting",  # 党小组会
    "party_lecture",  # 党课
    "theme_day",  # 主题党日
    "life_meeting",  # 组织生活会
    "evaluation",  # 民主评议
    "volunteer",  # 志愿服务
    "other",
]
AwareTime = Annotated[datetime, Meta(tz=True)]
Title = Annotated[str, Meta(min_length=1, max_length=200)]


class ActivityIn(Input):
    type: ActivityType
    title: Title
    station_id: Annotated[int, Meta(ge=1)]
    starts_at: AwareTime
    ends_at: AwareTime
    org_id: Annotated[int, Meta(ge=1)] | None = None
    description: Annotated[str, Meta(max_length=5000)] = ""
    checkin_opens_at: AwareTime | None = None
    checkin_closes_at: AwareTime | None = None
    required: bool = False
    records_hours: bool | None = None
    capacity: Annotated[int, Meta(ge=1, le=100_000)] | None = None


class ActivityPatch(Input):
    title: Title | UnsetType = UNSET
    type: ActivityType | UnsetType = UNSET
    description: Annotated[str, Meta(max_length=5000)] | UnsetType = UNSET
    starts_at: AwareTime | UnsetType = UNSET
    ends_at: AwareTime | UnsetType = UNSET
    checkin_opens_at: AwareTime | UnsetType = UNSET
    checkin_closes_at: AwareTime | UnsetType = UNSET
    required: bool | UnsetType = UNSET
    records_hours: bool | UnsetType = UNSET
    capacity: Annotated[int, Meta(ge=1, le=100_000)] | None | UnsetType = UNSET
    status: Literal["planned", "cancelled"] | UnsetType = UNSET


class ActivityOut(Output):
    id: int
    type: str
    title: str
    description: str
    station_id: int
    station_name: str
    org_id: int
    org_name: str
    starts_at: datetime
    ends_at: datetime
    checkin_opens_at: datetime
    checkin_closes_at: datetime
    required: bool
    records_hours: bool
    capacity: int | None
    status: str
    checked_in: int


class ActivityQROut(Output):
    activity_id: int
    token: str
    url: str
    not_before: datetime
    expires_at: datetime
    qr_version: int


class AttendanceItem(Output):
    member_id: int
    name: str
    org_name: str
    state: str  # present | pending | excused | absent
    method: str | None
    checked_in_at: datetime | None
    checked_out_at: datetime | None


class AttendanceOut(Output):
    activity_id: int
    required: bool
    expected: int
    present: int
    pending: int
    absent: int
    items: list[AttendanceItem]
    excused: int = 0


class CloseOut(Output):
    activity_id: int
    status: str
    absentees_penalised: int
    already_closed: bool
