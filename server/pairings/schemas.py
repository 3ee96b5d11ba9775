"""一帮一 pairings at the edge. Codes are English; the Chinese labels are in the descriptions."""

from datetime import date, datetime
from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from server.core.schemas import Input, Output

MAX_ID = 2**31 - 1

Id = Annotated[int, Meta(ge=1, le=MAX_ID)]
CounterpartKind = Annotated[
    Literal["resident", "worker", "new_member", "other"],
    Meta(description="结对对象类型：resident 居民 / worker 职工 / new_member 新党员 / other 其他"),
]
CounterpartName = Annotated[str, Meta(min_length=1, max_length=50, description="结对对象姓名")]
Category = Annotated[str, Meta(max_length=50, description="对象类别（自由文本），如 困难群众、独居老人、低保户")]
Contact = Annotated[str, Meta(min_length=1, max_length=100, description="联系方式（尽量少填，列表中对非管理者打码）")]
Goals = Annotated[str, Meta(max_length=2000, description="帮扶目标")]
IntervalDays = Annotated[int, Meta(ge=1, le=366, description="预期联系间隔（天），默认 30")]
PairingStatus = Literal["active", "ended"]
VisitMode = Annotated[
    Literal["home", "phone", "online", "station", "other"],
    Meta(description="走访方式：home 上门 / phone 电话 / online 线上 / station 到站 / other 其他"),
]
VisitStatus = Literal["pending", "approved", "rejected"]
ClientUUID = Annotated[
    str,
    Meta(
        min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
        description="客户端生成的唯一编号（离线队列重放时保持不变）：同一党员重复提交返回已存记录",
    ),
]
AwareTime = Annotated[datetime, Meta(tz=True, description="带时区偏移的时间（RFC 3339）")]
Text2000 = Annotated[str, Meta(max_length=2000)]


class PairingIn(Input):
    """Create a pairing (staff, secretary or admin whose scope holds the helper member)."""

    member_id: Annotated[int, Meta(ge=1, le=MAX_ID, description="帮扶党员（member id）")]
    kind: CounterpartKind
    name: CounterpartName
    category: Category = ""
    contact: Contact | None = None
    goals: Goals = ""
    start_date: Annotated[date | None, Meta(description="开始日期，默认今天（本地时区）")] = None
    end_date: Annotated[date | None, Meta(description="计划结束日期，可空")] = None
    interval_days: IntervalDays = 30


class PairingPatch(Input):
    """Edit or end a pairing. ``status: "ended"`` without ``end_date`` ends it today."""

    kind: CounterpartKind | UnsetType = UNSET
    name: CounterpartName | UnsetType = UNSET
    category: Category | UnsetType = UNSET
    contact: Contact | None | UnsetType = UNSET
    goals: Goals | UnsetType = UNSET
    start_date: date | UnsetType = UNSET
    end_date: date | None | UnsetType = UNSET
    interval_days: IntervalDays | UnsetType = UNSET
    status: Annotated[PairingStatus, Meta(description="active 进行中 / ended 已结束")] | UnsetType = UNSET


class PairingOut(Output):
    id: int
    member_id: int
    member_name: str
    org_id: int
    org_name: str
    kind: str
    name: str
    category: str
    contact: Annotated[str | None, Meta(description="联系方式；contact_masked 为 true 时已打码")]
    contact_masked: bool
    goals: str
    start_date: date
    end_date: date | None
    interval_days: int
    status: str
    last_visit_at: Annotated[datetime | None, Meta(description="最近一次待核实或已核实走访的时间")]
    due_on: Annotated[date, Meta(description="下次应走访日期：(最近走访日期 或 开始日期) + interval_days")]
    days_overdue: Annotated[int, Meta(description="超期天数（未超期或已结束为 0）")]
    visit_count: Annotated[int, Meta(description="走访记录数（全部状态）")]
    verified_count: Annotated[int, Meta(description="已核实走访数")]
    created_at: datetime
    updated_at: datetime


class VisitIn(Input):
    """Record a visit (the helper themself, or staff/secretary on their behalf). Idempotent by client_uuid."""

    client_uuid: ClientUUID
    visited_at: AwareTime
    mode: VisitMode
    content: Annotated[str, Meta(min_length=1, max_length=2000, description="走访内容")]
    problems: Annotated[str, Meta(max_length=2000, description="发现的问题（可选）")] = ""
    help_given: Annotated[str, Meta(max_length=2000, description="采取的措施、提供的帮助（可选）")] = ""
    outcome: Annotated[str, Meta(max_length=2000, description="走访成效（可选）")] = ""


class VisitOut(Output):
    id: int
    pairing_id: int
    member_id: int
    member_name: str
    counterpart_name: str
    client_uuid: str
    visited_at: datetime
    mode: str
    content: str
    problems: str
    help_given: str
    outcome: str
    status: Annotated[str, Meta(description="pending 待核实 / approved 已核实 / rejected 未通过")]
    method: Annotated[str, Meta(description="self 本人记录 / staff 工作人员代记")]
    recorded_by: int
    created_at: datetime
    verified_by: int | None
    verified_at: datetime | None
    verify_note: str | None
    points: Annotated[float, Meta(description="该走访当前净得积分（核实加分减去冲销）")]


class PairingDetailOut(PairingOut):
    visits: Annotated[list[VisitOut], Meta(description="走访记录，最新在前")]


class VerifyIn(Input):
    approve: Annotated[bool, Meta(description="true 核实通过（按规则加分）；false 不通过（已加分的追加冲销）")]
    note: Annotated[str, Meta(max_length=200)] = ""


class VerifyOut(Output):
    visit: VisitOut
    points_delta: Annotated[float, Meta(description="本次审核带来的积分变化（封顶后可能为 0；冲销为负）")]
    message: str


class OverdueItem(Output):
    pairing_id: int
    member_id: int
    member_name: str
    name: str
    kind: str
    category: str
    interval_days: int
    start_date: date
    last_visit_on: date | None
    due_on: date
    days_overdue: int


class OverdueBranch(Output):
    org_id: int
    org_name: str
    count: int
    items: list[OverdueItem]


class OverdueOut(Output):
    as_of: Annotated[date, Meta(description="判断日期（本地今天）")]
    org_id: int | None
    total: int
    branches: list[OverdueBranch]


class StatsRow(Output):
    org_id: Annotated[int | None, Meta(description="支部 id；合计行为 null")]
    org_name: str
    pairings: Annotated[int, Meta(description="该年度内有效（曾处于结对期）的结对数")]
    active_pairings: Annotated[int, Meta(description="当前进行中的结对数")]
    visits: Annotated[int, Meta(description="该年度走访记录数（全部状态）")]
    verified_visits: int
    pending_visits: int
    rejected_visits: int
    overdue: Annotated[int, Meta(description="当前超期未走访的结对数（按今天计算，与年度无关）")]


class StatsOut(Output):
    year: int
    org_id: int | None
    branches: list[StatsRow]
    totals: StatsRow
