from datetime import date, datetime
from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from server.core.schemas import Input, Output

Category = Literal["basic", "reward", "penalty"]  # 基础 / 奖励 / 扣分
# What fires a rule: an activity type (attendance), or one of the non-activity events. A rule with any
# other trigger would never fire, so it is refused.
Trigger = Literal[
    "branch_meeting", "committee_meeting", "group_meeting", "party_lecture", "theme_day", "life_meeting",
    "evaluation", "volunteer", "other",  # activity types: attending one
    "volunteer_hour",  # per approved volunteer hour
    "pairing_visit",  # a verified 一帮一 visit
    "absence",  # unexcused absence from a required activity, on close
    "dues_overdue",  # 党费逾期, posted by hand
    "manual",  # manual reward / deduction
]
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


class RuleTerms(Output):
    """What a rule says, as it is now or as one of its versions was."""

    version: int
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
    status: str


class RuleOut(RuleTerms):
    id: int
    code: str


AdjustmentCategory = Literal["reward", "deduction", "dues_overdue"]  # 奖励 / 扣分 / 党费逾期


class AdjustmentIn(Input):
    member_id: Annotated[int, Meta(ge=1)]
    delta: Annotated[float, Meta(ge=-100, le=100)]
    reason: Annotated[str, Meta(min_length=2, max_length=200)]
    category: AdjustmentCategory | None = None  # default: reward when delta > 0, deduction when < 0
    rule_code: Literal["manual_reward", "manual_deduction", "dues_overdue"] | None = None  # older spelling


class EntryOut(Output):
    id: int
    delta: float
    reason: str
    rule_code: str | None
    source_type: str
    occurred_at: datetime
    reverses_id: int | None
    rule_id: int | None = None
    rule_version: int | None = None  # the rule version the entry used (edits never change it)
    created_by: int | None = None  # who posted it (adjustments, decisions); None for automatic entries
    created_at: datetime | None = None


class RuleVersionOut(RuleTerms):
    rule_id: int
    changed_by: int | None
    changed_at: datetime


class MyPointsOut(Output):
    year: int
    quarter: int | None
    month: int | None
    base: int
    earned: float
    total: float
    star: int
    rank: int
    rank_org_id: int  # the member's branch (their org, or the nearest ancestor that is not a 党小组)
    rank_org_name: str
    rank_members: int  # active members ranked in that branch
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
    quarter: int | None
    month: int | None
    members: int  # active members ranked in the subtree
    rows: list[LeaderRow]


class BranchRow(Output):
    org_id: int
    org_name: str
    kind: str
    members: int  # active members (正常/流入) of the branch subtree
    earned: float  # their points earned in the period, summed
    avg_points: float | None  # base + earned / members; None without members
    expected: int  # required-activity attendances expected in the period
    attended: int  # … of which attended (accepted or pending check-in)
    excused: int  # … of which excused by approved leave (not attended)
    attendance_rate: float | None  # attended / (expected − excused); None when nothing was expected
    score: float | None  # avg_points × (attendance_rate, or 1 when None); None without members
    rank: int | None  # competition ranking by score (1, 1, 3)
    band: str | None  # 先进 / 中间 / 后进; None without members


class BranchRaceOut(Output):
    org_id: int
    org_name: str
    year: int
    quarter: int | None
    month: int | None
    top_fraction: float
    bottom_fraction: float
    branches: list[BranchRow]


class TrendBranch(Output):
    org_id: int
    org_name: str
    points: list[float]  # 12 numbers: points earned by the branch's active members in each local month


class TrendOut(Output):
    org_id: int
    org_name: str
    year: int
    branches: list[TrendBranch]
    totals: list[float]
