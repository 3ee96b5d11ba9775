from typing import Annotated, Literal

from litestar import Controller, Request, Response, get, patch, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from server.core.context import Ctx
from server.pairings import services
from server.pairings.schemas import (
    MAX_ID,
    OverdueOut,
    PairingDetailOut,
    PairingIn,
    PairingOut,
    PairingPatch,
    StatsOut,
    VerifyIn,
    VerifyOut,
    VisitIn,
    VisitOut,
)

OrgId = Annotated[int | None, QueryParameter(ge=1, le=MAX_ID, description="只看该组织（子树）内帮扶党员的结对")]
Mine = Annotated[
    bool | None,
    QueryParameter(description="true 只看本人（帮扶党员）的；默认：党员看自己的，工作人员/书记/管理员看管辖范围"),
]
Limit = Annotated[int, QueryParameter(ge=1, le=500)]
Offset = Annotated[int, QueryParameter(ge=0, le=1_000_000)]


class PairingController(Controller):
    path = "/pairings"
    tags = ["pairings"]

    @get("/", summary="一帮一 pairings in my scope (contacts masked unless I manage the helper's org)")
    async def list_pairings(
        self,
        request: Request,
        ctx: Ctx,
        org_id: OrgId = None,
        status: Annotated[Literal["active", "ended"] | None, QueryParameter(description="active 进行中 / ended 已结束")] = None,
        mine: Mine = None,
        member_id: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID, description="帮扶党员")] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[PairingOut]:
        return await services.list_pairings(
            ctx, request.user, org_id=org_id, status=status, mine=mine, member_id=member_id, limit=limit, offset=offset
        )

    @post("/", summary="Create a pairing for a member in my scope (staff, secretary, admin)")
    async def create_pairing(self, request: Request, ctx: Ctx, data: JSONBody[PairingIn]) -> PairingDetailOut:
        return await services.create_pairing(ctx, request.user, data)

    @get("/{pairing_id:int}", summary="One pairing with its visits (newest first)")
    async def get_pairing(self, request: Request, ctx: Ctx, pairing_id: FromPath[int]) -> PairingDetailOut:
        return await services.get_pairing(ctx, request.user, pairing_id)

    @patch("/{pairing_id:int}", summary="Edit or end a pairing (status: ended)")
    async def update_pairing(
        self, request: Request, ctx: Ctx, pairing_id: FromPath[int], data: JSONBody[PairingPatch]
    ) -> PairingDetailOut:
        return await services.update_pairing(ctx, request.user, pairing_id, data)

    @post(
        "/{pairing_id:int}/visits",
        status_code=201,
        summary="Record a visit (201); the same client_uuid again returns the stored visit with 200",
        description=(
            "By the helper member themself (online or replayed from the PWA outbox) or by staff/secretary on their "
            "behalf. Idempotent by (helper, client_uuid): a replay answers 200 with the stored visit and writes "
            "nothing. A client_uuid already used by another member's record is 409 `client_uuid_taken`. "
            "The visit starts `pending` until verified."
        ),
        responses={200: ResponseSpec(data_container=VisitOut, description="Replay: the visit stored earlier")},
    )
    async def record_visit(
        self, request: Request, ctx: Ctx, pairing_id: FromPath[int], data: JSONBody[VisitIn]
    ) -> Response[VisitOut]:
        visit, created = await services.record_visit(ctx, request.user, pairing_id, data)
        return Response(visit, status_code=201 if created else 200)

    @get("/visits", summary="Visits in my scope, e.g. the review queue (status=pending)")
    async def list_visits(
        self,
        request: Request,
        ctx: Ctx,
        org_id: OrgId = None,
        status: Annotated[
            Literal["pending", "approved", "rejected"] | None,
            QueryParameter(description="pending 待核实 / approved 已核实 / rejected 未通过"),
        ] = None,
        pairing_id: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)] = None,
        mine: Mine = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[VisitOut]:
        return await services.list_visits(
            ctx, request.user, org_id=org_id, status=status, pairing_id=pairing_id, mine=mine, limit=limit, offset=offset
        )

    @post(
        "/visits/{visit_id:int}/verify",
        status_code=200,
        summary="Verify a visit: approve (+points within the rule's caps) or reject (reverses points already given)",
    )
    async def verify_visit(self, request: Request, ctx: Ctx, visit_id: FromPath[int], data: JSONBody[VerifyIn]) -> VerifyOut:
        return await services.verify_visit(ctx, request.user, visit_id, data)

    @get("/overdue", summary="Active pairings with no pending/verified visit within their interval, per branch")
    async def overdue(self, request: Request, ctx: Ctx, org_id: OrgId = None) -> OverdueOut:
        return await services.overdue(ctx, request.user, org_id)

    @get("/stats", summary="Per branch: pairings, visits (year), verified visits, overdue now")
    async def stats(
        self,
        request: Request,
        ctx: Ctx,
        org_id: OrgId = None,
        year: Annotated[int | None, QueryParameter(ge=2000, le=2100, description="年度（本地时区），默认今年")] = None,
    ) -> StatsOut:
        return await services.stats(ctx, request.user, org_id, year)
