from typing import Annotated, Literal

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from server.core.context import Ctx
from server.leave import services
from server.leave.schemas import LeaveDecisionIn, LeaveIn, LeaveOut


@post("/activities/{activity_id:int}/leave-requests", status_code=201, tags=["leave"],
      summary="请假 for a required activity (a member for themself; staff/secretary with member_id)")
async def ask_leave(request: Request, ctx: Ctx, activity_id: FromPath[int], data: JSONBody[LeaveIn]) -> LeaveOut:
    return await services.ask_leave(ctx, request.user, activity_id, data)


class LeaveController(Controller):
    path = "/leave-requests"
    tags = ["leave"]

    @get("/", summary="Leave requests: mine, or those of the activities I run or manage")
    async def list_leave(
        self,
        request: Request,
        ctx: Ctx,
        status: FromQuery[Literal["pending", "approved", "rejected", "withdrawn"] | None] = None,
        activity_id: Annotated[int | None, QueryParameter(ge=1)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> list[LeaveOut]:
        return await services.list_leave(ctx, request.user, status=status, activity_id=activity_id, limit=limit)

    @post("/{leave_id:int}/decision", status_code=200, summary="Approve or reject (approval after the close restores the absence points)")
    async def decide(self, request: Request, ctx: Ctx, leave_id: FromPath[int], data: JSONBody[LeaveDecisionIn]) -> LeaveOut:
        return await services.decide(ctx, request.user, leave_id, data)

    @post("/{leave_id:int}/withdraw", status_code=200, summary="Withdraw my pending request")
    async def withdraw(self, request: Request, ctx: Ctx, leave_id: FromPath[int]) -> LeaveOut:
        return await services.withdraw(ctx, request.user, leave_id)
