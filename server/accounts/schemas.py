from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta

from server.core.schemas import Input, Output

Phone = Annotated[str, Meta(min_length=5, max_length=20, pattern=r"^\+?[0-9]{5,20}$")]
Password = Annotated[str, Meta(min_length=8, max_length=128)]


class LoginIn(Input):
    phone: Annotated[str, Meta(min_length=1, max_length=20)]
    password: Annotated[str, Meta(min_length=1, max_length=128)]


class RefreshIn(Input):
    # Longer than a refresh token, so that a token of another kind is answered 401, not 400.
    refresh_token: Annotated[str, Meta(min_length=1, max_length=4096)]


class LogoutIn(Input):
    refresh_token: Annotated[str, Meta(min_length=1, max_length=200)] | None = None


class ActivateIn(Input):
    code: Annotated[str, Meta(min_length=1, max_length=200)]
    password: Password


class GrantOut(Output):
    role: str
    org_id: int | None
    station_id: int | None
    scope_name: str


class UserOut(Output):
    id: int
    phone: str
    display_name: str
    member_id: int | None
    org_id: int | None
    org_name: str | None
    roles: list[str]
    grants: list[GrantOut]


class TokenOut(Output):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    user: UserOut


class InviteOut(Output):
    code: str
    url: str
    expires_at: datetime


GrantRole = Literal["staff", "secretary", "admin"]


class RoleGrantIn(Input):
    """Who (``phone`` or ``user_id``, one of them) gets which role where: ``staff`` on a station
    (``station_id``), ``secretary``/``admin`` on an org subtree (``org_id``)."""

    role: GrantRole
    phone: Phone | None = None
    user_id: Annotated[int, Meta(ge=1)] | None = None
    org_id: Annotated[int, Meta(ge=1)] | None = None
    station_id: Annotated[int, Meta(ge=1)] | None = None


class RoleGrantOut(Output):
    id: int
    user_id: int
    display_name: str
    phone: str  # masked (139****0001) unless the caller administers all of that user
    member_id: int | None
    active: bool
    role: str
    org_id: int | None
    station_id: int | None
    scope_name: str
    created_at: datetime
