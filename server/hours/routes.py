from datetime import date
from typing import Annotated, Literal

from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from server.core.context import Ctx
from server.hours import services
from server.hours.schemas import (
    CompleteCheckoutIn,
    CorrectionDecisionIn,
    CorrectionIn,
    CorrectionOut,
    HoursDecisionIn,
    HoursDetailOut,
    HoursOut,
    MyHoursOut,
)

Limit = Annotated[int, QueryParameter(ge=1, le=500, description="at most this many rows")]
Offset = Annotated[int, QueryParameter(ge=0)]


@get(
    "/me/volunteer-hours", tags=["volunteer-hours"],
    summary="My volunteer hours of a year (by local day of service) with totals",
)
async def my_volunteer_hours(
    request: Request, ctx: Ctx, year: Annotated[int | None, QueryParameter(ge=2000, le=2100)] = None
) -> MyHoursOut:
    return await services.my_hours(ctx, request.user, year)


class VolunteerHoursController(Controller):
    path = "/volunteer-hours"
    tags = ["volunteer-hours"]

    @get(
        "/",
        summary="Hours records I can see: staff their stations, admins/secretaries their org subtrees, members their own",
    )
    async def list_hours(
        self,
        request: Request,
        ctx: Ctx,
        status: Annotated[
            Literal["approved", "pending", "rejected"] | None, QueryParameter(description="approved | pending | rejected")
        ] = None,
        activity_id: Annotated[int | None, QueryParameter(ge=1)] = None,
        member_id: Annotated[int | None, QueryParameter(ge=1)] = None,
        date_from: Annotated[date | None, QueryParameter(name="from", description="local day of service, from (inclusive)")] = None,
        date_to: Annotated[date | None, QueryParameter(name="to", description="local day of service, to (inclusive)")] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[HoursOut]:
        return await services.list_hours(
            ctx, request.user, status=status, activity_id=activity_id, member_id=member_id, date_from=date_from,
            date_to=date_to, limit=limit, offset=offset,
        )

    @get("/{hours_id:int}", summary="One hours record with its correction history")
    async def get_hours(self, request: Request, ctx: Ctx, hours_id: FromPath[int]) -> HoursDetailOut:
        return await services.get_hours(ctx, request.user, hours_id)

    @post(
        "/{hours_id:int}/decision", status_code=200,
        summary="Approve (all, or part: hours a multiple of 0.5 ≤ computed) or reject a record; 409 locked after 10 working days",
    )
    async def decision(
        self, request: Request, ctx: Ctx, hours_id: FromPath[int], data: JSONBody[HoursDecisionIn]
    ) -> HoursDetailOut:
        return await services.decide(ctx, request.user, hours_id, data)

    @post(
        "/complete", status_code=201,
        summary="Staff complete a missing check-out (never beyond the schedule); the hours record follows",
    )
    async def complete(self, request: Request, ctx: Ctx, data: JSONBody[CompleteCheckoutIn]) -> HoursDetailOut:
        return await services.complete_checkout(ctx, request.user, data)

    @post(
        "/{hours_id:int}/corrections", status_code=201,
        summary="Ask to correct a locked record's hours (the member or a reviewer); an admin/secretary decides",
    )
    async def request_correction(
        self, request: Request, ctx: Ctx, hours_id: FromPath[int], data: JSONBody[CorrectionIn]
    ) -> CorrectionOut:
        return await services.request_correction(ctx, request.user, hours_id, data)

    @get("/corrections", summary="Correction requests I can see (newest first)")
    async def list_corrections(
        self,
        request: Request,
        ctx: Ctx,
        status: Annotated[
            Literal["pending", "approved", "rejected"] | None, QueryParameter(description="pending | approved | rejected")
        ] = None,
        hours_id: Annotated[int | None, QueryParameter(ge=1)] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[CorrectionOut]:
        return await services.list_corrections(
            ctx, request.user, status=status, hours_id=hours_id, limit=limit, offset=offset
        )

    @post(
        "/corrections/{correction_id:int}/decision", status_code=200,
        summary="An admin/secretary approves (the hours change, points follow) or rejects a correction request",
    )
    async def decide_correction(
        self, request: Request, ctx: Ctx, correction_id: FromPath[int], data: JSONBody[CorrectionDecisionIn]
    ) -> CorrectionOut:
        return await services.decide_correction(ctx, request.user, correction_id, data)
