import asyncio
from datetime import datetime
from typing import Annotated, Literal

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from server.activities import services
from server.activities.schemas import (
    ActivityIn,
    ActivityOut,
    ActivityPatch,
    AttendanceOut,
    CloseOut,
)
from server.core.context import Ctx
from server.core.downloads import JSON, PDF, PNG, SVG, XLSX, content_disposition, file_operation
from server.core.qr import poster_pdf, poster_svg, qr_png


class ActivityController(Controller):
    path = "/activities"
    tags = ["activities"]

    @get("/", summary="Activities I can see, by station/time/status")
    async def list_activities(
        self,
        request: Request,
        ctx: Ctx,
        station_id: Annotated[int | None, QueryParameter(ge=1)] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        status: FromQuery[Literal["planned", "open", "closed", "cancelled"] | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> list[ActivityOut]:
        return await services.list_activities(
            ctx, request.user, station_id=station_id, since=since, until=until, status=status, limit=limit
        )

    @post("/", summary="Create an activity at a station I run or manage")
    async def create_activity(self, request: Request, ctx: Ctx, data: JSONBody[ActivityIn]) -> ActivityOut:
        return await services.create_activity(ctx, request.user, data)

    @get("/{activity_id:int}", summary="One activity")
    async def get_activity(self, request: Request, ctx: Ctx, activity_id: FromPath[int]) -> ActivityOut:
        activity, _ = await services.visible_activity(ctx, request.user, activity_id)
        return activity

    @patch("/{activity_id:int}", summary="Edit or cancel an activity")
    async def update_activity(self, request: Request, ctx: Ctx, activity_id: FromPath[int], data: JSONBody[ActivityPatch]) -> ActivityOut:
        return await services.update_activity(ctx, request.user, activity_id, data)

    @get(
        "/{activity_id:int}/qr", operation_class=file_operation(JSON, SVG, PDF, PNG),
        summary="The activity check-in code: JSON, A4 poster as SVG or PDF, or PNG",
    )
    async def qr(
        self, request: Request, ctx: Ctx, activity_id: FromPath[int],
        format: FromQuery[Literal["json", "svg", "pdf", "png"]] = "json",
    ) -> Response:
        code = await services.activity_qr(ctx, request.user, activity_id)
        if format == "json":
            return Response(code)
        if format == "png":
            return Response(await asyncio.to_thread(qr_png, code.url), media_type=PNG)
        activity, _ = await services.visible_activity(ctx, request.user, activity_id)
        local = activity.starts_at.astimezone(ctx.settings.tz)
        subtitle = f"{local:%Y-%m-%d %H:%M} · {activity.station_name}"
        if format == "pdf":
            when = services.schedule_text(activity.starts_at, activity.ends_at, ctx.settings.tz)
            subtitle = f"{when} · {activity.station_name}"
            body = await asyncio.to_thread(poster_pdf, activity.title, subtitle, code.url, "扫码签到")
            disposition = content_disposition(f"{activity.title}-签到码.pdf", f"activity-{activity.id}.pdf", inline=True)
            return Response(body, media_type=PDF, headers={"Content-Disposition": disposition})
        body = await asyncio.to_thread(poster_svg, activity.title, subtitle, code.url, "扫码签到")
        return Response(body, media_type=SVG)

    @get("/{activity_id:int}/attendance", summary="Who came, who is pending, who is absent")
    async def attendance(self, request: Request, ctx: Ctx, activity_id: FromPath[int]) -> AttendanceOut:
        return await services.attendance(ctx, request.user, activity_id)

    @get("/{activity_id:int}/attendance.xlsx", media_type=XLSX, summary="The attendance sheet as xlsx (姓名, 支部, 状态, 方式, 签到/签退时间)")
    async def attendance_xlsx(self, request: Request, ctx: Ctx, activity_id: FromPath[int]) -> Response[bytes]:
        body, filename = await services.attendance_xlsx(ctx, request.user, activity_id)
        disposition = content_disposition(filename, f"attendance-{activity_id}.xlsx")
        return Response(body, media_type=XLSX, headers={"Content-Disposition": disposition, "Cache-Control": "private, no-store"})

    @post("/{activity_id:int}/close", status_code=200, summary="Close; applies the absence rule once")
    async def close(self, request: Request, ctx: Ctx, activity_id: FromPath[int]) -> CloseOut:
        return await services.close_activity(ctx, request.user, activity_id)
