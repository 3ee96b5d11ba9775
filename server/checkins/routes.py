from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from server.checkins import services
from server.checkins.fastlane import item_in, result_out, single_checkin_lane, sync_lane
from server.checkins.schemas import (
    MAX_BATCH,
    CheckinItemIn,
    CheckinOut,
    CheckinResultOut,
    DecisionIn,
    DecisionOut,
    StaffCheckinIn,
    SyncIn,
    SyncOut,
)
from server.core.auth import Principal
from server.core.context import Ctx
from server.core.errors import APIError, ErrorOut, forbidden, not_found
from server.core.sql import Where
from server.keys.tokens import TokenError, extract_token


def _member_actor(user: Principal) -> tuple[services.Actor, tuple[int, str, str]]:
    if user.member_id is None or user.member_org_path is None:
        raise forbidden("当前账号不是党员账号，不能自助签到")
    return services.Actor(member_id=user.member_id, method="self"), (user.member_id, user.member_org_path, user.member_status or "")


# A rejected check-in answers 422 with its result (reason + Chinese message); a bad card code with an error body.
REJECTED = {
    422: ResponseSpec(CheckinResultOut | ErrorOut, description="Rejected: the result, or an error body", generate_examples=False),
}


def _processor(ctx: Ctx) -> services.CheckinProcessor:
    """One per request: it holds that request's batch state."""
    return services.CheckinProcessor(ctx)


_CHECKIN_LIST_SQL = """
SELECT c.id, c.member_id, m.name, c.activity_id, a.title, c.station_id, s.name, c.kind, c.method, c.status,
       c.reason, c.scanned_at, c.received_at,
       COALESCE((SELECT SUM(l.delta) FROM points_ledger l WHERE l.source_type = 'checkin' AND l.source_id = c.id), 0)
FROM checkins c
JOIN members m ON m.id = c.member_id
JOIN stations s ON s.id = c.station_id
LEFT JOIN activities a ON a.id = c.activity_id
"""


def _checkin_row(row: Any) -> CheckinOut:
    return CheckinOut(
        id=row[0], member_id=row[1], member_name=row[2], activity_id=row[3], activity_title=row[4], station_id=row[5],
        station_name=row[6], kind=row[7], method=row[8], status=row[9], reason=row[10], scanned_at=row[11],
        received_at=row[12], points=float(row[13]),
    )


class CheckinController(Controller):
    path = "/checkins"
    tags = ["check-ins"]

    @post(
        "/", status_code=200, summary="Check in with one scanned code (422 when rejected)",
        middleware=[single_checkin_lane], responses=REJECTED,
    )
    async def check_in(self, request: Request, ctx: Ctx, data: JSONBody[CheckinItemIn]) -> Response[CheckinResultOut]:
        actor, member = _member_actor(request.user)
        [result] = await _processor(ctx).process(actor, [item_in(data)], member=member)
        return Response(result_out(result), status_code=422 if result.status == "rejected" else 200)

    @post(
        "/sync", status_code=200, summary="Sync up to 500 queued check-ins; one result per item", middleware=[sync_lane]
    )
    async def sync(self, request: Request, ctx: Ctx, data: JSONBody[SyncIn]) -> SyncOut:
        actor, member = _member_actor(request.user)
        if len(data.items) > MAX_BATCH:
            raise APIError(400, "batch_too_large", f"一次最多同步 {MAX_BATCH} 条记录")
        results = await _processor(ctx).process(actor, [item_in(i) for i in data.items], member=member)
        return SyncOut(results=[result_out(r) for r in results])

    @post("/staff", status_code=200, summary="Staff check a member in by member card QR or member id", responses=REJECTED)
    async def staff_check_in(self, request: Request, ctx: Ctx, data: JSONBody[StaffCheckinIn]) -> Response[CheckinResultOut]:
        user: Principal = request.user
        if not user.is_staff_like:  # a role that never checks others in: 403, whatever the activity
            raise forbidden("只有服务站工作人员可以为党员签到")
        if (data.member_token is None) == (data.member_id is None):
            raise APIError(400, "member_required", "请提供党员证二维码或党员编号（二选一）")
        activity = await ctx.db.fetchrow(
            "SELECT a.id, a.station_id, s.org_path FROM activities a JOIN stations s ON s.id = a.station_id WHERE a.id = $1",
            data.activity_id,
        )
        if activity is None or not user.reaches_station(activity[1], activity[2]):
            raise not_found("活动")
        if data.member_token is not None:
            try:
                token = extract_token(data.member_token)
                claims = ctx.tokens.verify_server(token)
            except TokenError as exc:
                raise APIError(422, exc.reason, exc.detail) from None
            if claims.get("t") != "mb":
                raise APIError(422, "malformed", "这不是党员证二维码")
            member = await ctx.db.fetchrow("SELECT id, org_path, card_version FROM members WHERE id = $1", claims.get("mid"))
            if member is None:
                raise APIError(422, "unknown_member", "党员证对应的党员不存在")
            method = "staff_card"
            if int(claims.get("v", -1)) != member[2]:
                # A lost card that was revoked: stored as a rejected attempt for that member.
                actor = services.Actor(member_id=member[0], method=method, staff_user_id=user.user_id)
                item = services.Item(client_uuid=data.client_uuid, token=data.member_token, scanned_at=data.scanned_at, kind=data.kind)
                result = await _processor(ctx).reject_card(actor, item, data.activity_id)
                return Response(result_out(result), status_code=422)
        else:
            member = await ctx.db.fetchrow("SELECT id, org_path FROM members WHERE id = $1", data.member_id)
            if member is None or not user.sees_member(member[0], member[1]):
                raise not_found("党员")
            method = "staff_manual"
        actor = services.Actor(member_id=member[0], method=method, staff_user_id=user.user_id)
        item = services.Item(
            client_uuid=data.client_uuid, token=data.member_token or "", scanned_at=data.scanned_at, kind=data.kind
        )
        [result] = await _processor(ctx).process(actor, [item], activity_id=data.activity_id)
        return Response(result_out(result), status_code=422 if result.status == "rejected" else 200)

    @get("/review", summary="Check-ins waiting for a staff decision, in the caller's stations")
    async def review_queue(
        self,
        request: Request,
        ctx: Ctx,
        station_id: Annotated[int | None, QueryParameter(ge=1)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> list[CheckinOut]:
        user: Principal = request.user
        if not user.is_staff_like:
            raise forbidden("仅工作人员可查看审核队列")
        where = Where().add("c.status = {}", "pending_review")
        reach = where.sub()
        reach.any_of("c.station_id", list(user.staff_station_ids))
        manager = where.sub()
        manager.prefix_any("s.org_path", user.manager_paths)
        where.either(reach, manager)
        if station_id is not None:
            where.add("c.station_id = {}", station_id)
        rows = await ctx.db.fetch(
            _CHECKIN_LIST_SQL + f" WHERE {where.sql} ORDER BY c.scanned_at LIMIT {int(limit)}", *where.args
        )
        return [_checkin_row(r) for r in rows]

    @post("/{checkin_id:int}/decision", status_code=200, summary="Accept or reject a pending check-in")
    async def decision(self, request: Request, ctx: Ctx, checkin_id: FromPath[int], data: JSONBody[DecisionIn]) -> DecisionOut:
        user: Principal = request.user
        row = await ctx.db.fetchrow(
            "SELECT c.station_id, s.org_path, c.member_id FROM checkins c JOIN stations s ON s.id = c.station_id"
            " WHERE c.id = $1",
            checkin_id,
        )
        if row is None:
            raise not_found("签到记录")
        if row[2] == user.member_id:  # like leave, hours, visits and adjustments: nobody decides their own
            raise APIError(403, "own_request", "不能审核自己的签到")
        if not user.reaches_station(row[0], row[1]):
            raise not_found("签到记录")
        result = await services.decide(
            ctx, checkin_id=checkin_id, accept=data.accept, note=data.note, decided_by=user.user_id,
            activity_id=data.activity_id,
        )
        return DecisionOut(**result)


@get("/me/checkins", tags=["check-ins"], summary="My check-ins, newest first")
async def my_checkins(
    request: Request,
    ctx: Ctx,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    offset: Annotated[int, QueryParameter(ge=0)] = 0,
) -> list[CheckinOut]:
    user: Principal = request.user
    if user.member_id is None:
        return []
    rows = await ctx.db.fetch(
        _CHECKIN_LIST_SQL + " WHERE c.member_id = $1 ORDER BY c.scanned_at DESC, c.id DESC LIMIT $2 OFFSET $3",
        user.member_id, limit, offset,
    )
    return [_checkin_row(r) for r in rows]
