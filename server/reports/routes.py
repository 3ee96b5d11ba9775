"""GET /reports/*.xlsx — scope-filtered xlsx reports (see services for the rules)."""

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import QueryParameter

from server.core.auth import Principal
from server.core.context import Context, Ctx
from server.core.downloads import XLSX, content_disposition
from server.reports import services

OrgId = Annotated[int | None, QueryParameter(ge=1, description="one org subtree in my reach (default: all of it)")]
Year = Annotated[int | None, QueryParameter(ge=2000, le=2100, description="calendar year (default: this year)")]
DateFrom = Annotated[date | None, QueryParameter(name="from", description="first local day (with `to`, instead of `year`)")]
DateTo = Annotated[date | None, QueryParameter(name="to", description="last local day, inclusive")]

Builder = Callable[[Context, Principal, int | None, services.Period], Awaitable[tuple[bytes, str]]]


async def _download(
    builder: Builder, fallback: str, request: Request, ctx: Context, org_id: int | None, year: int | None,
    date_from: date | None, date_to: date | None,
) -> Response[bytes]:
    period = services.resolve_period(ctx, year, date_from, date_to)
    body, filename = await builder(ctx, request.user, org_id, period)
    headers = {
        "Content-Disposition": content_disposition(filename, f"{fallback}-{period.file_label}.xlsx"),
        "Cache-Control": "private, no-store",
    }
    return Response(body, media_type=XLSX, headers=headers)


class ReportController(Controller):
    path = "/reports"
    tags = ["reports"]

    @get("/points.xlsx", media_type=XLSX, summary="Points: sheets 党员积分 (base, 基础/奖励/扣减, total, star, rank in branch) and 支部积分")
    async def points(
        self, request: Request, ctx: Ctx, org_id: OrgId = None, year: Year = None, date_from: DateFrom = None,
        date_to: DateTo = None,
    ) -> Response[bytes]:
        return await _download(services.points_report, "points", request, ctx, org_id, year, date_from, date_to)

    @get("/attendance.xlsx", media_type=XLSX, summary="三会一课 attendance: per activity (应到/实到/请假/缺席 and names), detail, per member")
    async def attendance(
        self, request: Request, ctx: Ctx, org_id: OrgId = None, year: Year = None, date_from: DateFrom = None,
        date_to: DateTo = None,
    ) -> Response[bytes]:
        return await _download(services.attendance_report, "attendance", request, ctx, org_id, year, date_from, date_to)

    @get("/volunteer-hours.xlsx", media_type=XLSX, summary="Volunteer hours per member (approved, pending, records) and every record")
    async def volunteer_hours(
        self, request: Request, ctx: Ctx, org_id: OrgId = None, year: Year = None, date_from: DateFrom = None,
        date_to: DateTo = None,
    ) -> Response[bytes]:
        return await _download(services.hours_report, "volunteer-hours", request, ctx, org_id, year, date_from, date_to)

    @get("/pairings.xlsx", media_type=XLSX, summary="一帮一 pairings with visit counts (all/verified), last visit, overdue flag and days")
    async def pairings(
        self, request: Request, ctx: Ctx, org_id: OrgId = None, year: Year = None, date_from: DateFrom = None,
        date_to: DateTo = None,
    ) -> Response[bytes]:
        return await _download(services.pairings_report, "pairings", request, ctx, org_id, year, date_from, date_to)


__all__: list[Any] = ["ReportController"]
