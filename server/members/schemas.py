from datetime import date
from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from server.core.schemas import Input, Output

Phone = Annotated[str, Meta(min_length=5, max_length=20, pattern=r"^\+?[0-9]{5,20}$")]
Name = Annotated[str, Meta(min_length=1, max_length=50)]
IdCard = Annotated[str, Meta(min_length=15, max_length=18, pattern=r"^[0-9]{15}$|^[0-9]{17}[0-9Xx]$")]
Gender = Literal["male", "female"]
MemberType = Literal["formal", "probationary"]  # 正式党员 / 预备党员
MemberStatus = Literal["normal", "inflow", "outflow", "lost", "transferred", "history"]  # 正常/流入/流出/失联/转出/历史
Tag = Annotated[str, Meta(min_length=1, max_length=20)]


class MemberIn(Input):
    name: Name
    phone: Phone
    org_id: Annotated[int, Meta(ge=1)]
    gender: Gender | None = None
    birth_date: date | None = None
    id_card: IdCard | None = None
    join_date: date | None = None
    full_date: date | None = None
    member_type: MemberType = "formal"
    status: MemberStatus = "normal"
    group_id: Annotated[int, Meta(ge=1)] | None = None
    tags: Annotated[list[Tag], Meta(max_length=20)] = []


class MemberPatch(Input):
    name: Name | UnsetType = UNSET
    phone: Phone | UnsetType = UNSET
    org_id: Annotated[int, Meta(ge=1)] | UnsetType = UNSET
    gender: Gender | None | UnsetType = UNSET
    birth_date: date | None | UnsetType = UNSET
    id_card: IdCard | None | UnsetType = UNSET
    join_date: date | None | UnsetType = UNSET
    full_date: date | None | UnsetType = UNSET
    member_type: MemberType | UnsetType = UNSET
    status: MemberStatus | UnsetType = UNSET
    group_id: Annotated[int, Meta(ge=1)] | None | UnsetType = UNSET
    tags: Annotated[list[Tag], Meta(max_length=20)] | UnsetType = UNSET
    revoke_card: bool = False


class MemberOut(Output):
    id: int
    name: str
    phone: str
    gender: str | None
    birth_date: date | None
    id_card_last4: str | None
    join_date: date | None
    full_date: date | None
    member_type: str
    status: str
    org_id: int
    org_name: str
    group_id: int | None
    tags: list[str]
    card_version: int
    activated: bool


class ImportErrorOut(Output):
    row: int  # as the sheet shows it (header = row 1)
    column: str  # the Chinese header, or "" for the whole row/file
    message: str


class ImportOut(Output):
    ok: bool
    dry_run: bool
    rows: int  # data rows in the file (blank rows not counted)
    created: int  # members created (0 on a dry run)
    error_count: int
    errors: list[ImportErrorOut]  # at most 1000
