from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from server.core.schemas import Input, Output

OrgKind = Literal[
    "street_committee",  # 街道党工委
    "community_committee",  # 社区党委
    "general_branch",  # 党总支
    "branch",  # 党支部
    "joint_branch",  # 联合党支部
    "floating_branch",  # 流动党员党支部
    "two_new_branch",  # 两新组织党支部
    "group",  # 党小组
]
Name = Annotated[str, Meta(min_length=1, max_length=100)]


class OrgIn(Input):
    name: Name
    kind: OrgKind
    parent_id: Annotated[int, Meta(ge=1)]
    secretary_name: Annotated[str, Meta(max_length=50)] | None = None


class OrgPatch(Input):
    name: Name | UnsetType = UNSET
    kind: OrgKind | UnsetType = UNSET
    parent_id: Annotated[int, Meta(ge=1)] | UnsetType = UNSET
    secretary_name: Annotated[str, Meta(max_length=50)] | None | UnsetType = UNSET
    status: Literal["active", "inactive"] | UnsetType = UNSET


class OrgOut(Output):
    id: int
    name: str
    kind: str
    parent_id: int | None
    path: str
    depth: int
    secretary_name: str | None
    status: str
