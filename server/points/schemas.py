from datetime import date, datetime
from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from server.core.schemas import Input, Output

Category = Literal["basic", "reward", "penalty"]  # 基础 / 奖励 / 扣分
Trigger = Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[a-z_]+$")]
Cap = Annotated[float, Meta(gt=0, le=10_000)]


class RuleIn(Input):
    code: Annotated[str, Meta(min_length=2, max_length=40, pattern=r"^[a-z0-9_]+$")]
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    category: Category
    trigger: Trigger
    points: Annotated[float, Meta(ge=-100, le=100)]
    cap_day: Cap | None = None
    cap_month: Cap | None = None
    cap_year: Cap | None = None
    needs_approval: bool = False
    valid_from: date | None = None
    valid_to: date | None = None


class RulePatch(Input):
    name: Annotated[str, Meta(min_length=1, max_length=100)] | UnsetType = UNSET
    category: Category | UnsetType = UNSET
    points: Annotated[float, Meta(ge=-100, le=100)] | UnsetType = UNSET
    cap_day: Cap | None | UnsetType = UNSET
    cap_month: Cap | None | UnsetType = UNSET
    cap_year: Cap | None | UnsetType = UNSET
    needs_approval: bool | UnsetType = UNSET
    valid_from: date | None | UnsetType = UNSET
    valid_to: date | None | UnsetType = UNSET
    status: Literal["active", "retired"] | UnsetType = UNSET


class RuleOut(Output):
    id: int
    code: str
    name: str
    category: str
    trigger: str
    points: float
    cap_day: float | None
    cap_month: float | None
    cap_year: float | None
    needs_approval: bool
    valid_from: date | None
    valid_to: date | None
    version: int
    status: str


class AdjustmentIn(Input):
    member_id: Annotated[int, Meta(ge=1)]
    delta: Annotated[float, Meta(ge=-100, le=100)]
    reason: Annotated[str, Meta(min_length=2, max_length=200)]
    rule_code: Literal["manual_reward", "manual_deduction", "dues_overdue"] | None = None


class EntryOut(Output):
    id: int
    delta: float
    reason: str
    rule_code: str | None
    source_type: str
    occurred_at: datetime
    reverses_id: int | None


class MyPointsOut(Output):
    year: int
    base: int
    earned: float
    total: float
    star: int
    rank: int
    rank_org_id: int
    rank_org_name: str
    entries: list[EntryOut]


class LeaderRow(Output):
    rank: int
    member_id: int
    name: str
    org_name: str
    earned: float
    total: float
    star: int


class LeaderboardOut(Output):
    org_id: int
    org_name: str
    year: int
    rows: list[LeaderRow]
