from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta

from server.core.schemas import Input, Output

ClientUUID = Annotated[str, Meta(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
AwareTime = Annotated[datetime, Meta(tz=True)]
MAX_BATCH = 500


class CheckinItemIn(Input):
    client_uuid: ClientUUID
    token: Annotated[str, Meta(min_length=1, max_length=4096)]
    scanned_at: AwareTime
    kind: Literal["in", "out"] = "in"
    activity_id: Annotated[int, Meta(ge=1)] | None = None
    lat: Annotated[float, Meta(ge=-90, le=90)] | None = None
    lng: Annotated[float, Meta(ge=-180, le=180)] | None = None
    accuracy_m: Annotated[float, Meta(ge=0, le=100_000)] | None = None


class SyncIn(Input):
    items: list[CheckinItemIn]


class StaffCheckinIn(Input):
    activity_id: Annotated[int, Meta(ge=1)]
    client_uuid: ClientUUID
    scanned_at: AwareTime
    kind: Literal["in", "out"] = "in"
    member_token: Annotated[str, Meta(min_length=1, max_length=4096)] | None = None
    member_id: Annotated[int, Meta(ge=1)] | None = None


class DecisionIn(Input):
    accept: bool
    note: Annotated[str, Meta(max_length=200)] = ""
    activity_id: Annotated[int, Meta(ge=1)] | None = None


class CheckinResultOut(Output):
    client_uuid: str
    status: str
    reason: str | None
    checkin_id: int | None
    activity_id: int | None
    station_id: int | None
    points_awarded: float
    message: str


class SyncOut(Output):
    results: list[CheckinResultOut]


class CheckinOut(Output):
    id: int
    member_id: int
    member_name: str
    activity_id: int | None
    activity_title: str | None
    station_id: int
    station_name: str
    kind: str
    method: str
    status: str
    reason: str | None
    scanned_at: datetime
    received_at: datetime
    points: float


class DecisionOut(Output):
    id: int
    status: str
    points_awarded: float
    message: str
