from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, UnsetType

from server.core.schemas import Input, Output

Name = Annotated[str, Meta(min_length=1, max_length=100)]
Lat = Annotated[float, Meta(ge=-90, le=90)]
Lng = Annotated[float, Meta(ge=-180, le=180)]
Geofence = Annotated[int, Meta(ge=10, le=100_000)]


class StationIn(Input):
    name: Name
    org_id: Annotated[int, Meta(ge=1)]
    address: Annotated[str, Meta(max_length=200)] = ""
    lat: Lat | None = None
    lng: Lng | None = None
    geofence_m: Geofence | None = None
    service_hours: Annotated[str, Meta(max_length=200)] = ""


class StationPatch(Input):
    name: Name | UnsetType = UNSET
    address: Annotated[str, Meta(max_length=200)] | UnsetType = UNSET
    lat: Lat | None | UnsetType = UNSET
    lng: Lng | None | UnsetType = UNSET
    geofence_m: Geofence | None | UnsetType = UNSET
    service_hours: Annotated[str, Meta(max_length=200)] | UnsetType = UNSET
    status: Literal["active", "inactive"] | UnsetType = UNSET
    revoke_posters: bool = False


class StationOut(Output):
    id: int
    name: str
    org_id: int
    org_name: str
    address: str
    lat: float | None
    lng: float | None
    geofence_m: int | None
    service_hours: str
    poster_version: int
    status: str


class KioskIn(Input):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    public_key_jwk: dict[str, Any]


class KioskOut(Output):
    id: int
    station_id: int
    name: str
    kid: str
    status: str
    created_at: datetime
    revoked_at: datetime | None


class LiveActivityOut(Output):
    id: int
    title: str
    starts_at: datetime
    ends_at: datetime
    status: str  # planned | open | closed (derived like the activities API)
    checked_in: int  # accepted check-ins
    pending: int  # check-ins waiting for review


class LiveCheckinOut(Output):
    name_masked: str  # 张*明: first and last character only (shown on screens others can see)
    kind: str  # in | out
    method: str  # self | staff_card | staff_manual | kiosk
    status: str  # accepted | pending_review | rejected
    at: datetime  # scanned_at
    activity_id: int | None


class LiveOut(Output):
    station_id: int
    activities: list[LiveActivityOut]
    recent: list[LiveCheckinOut]
