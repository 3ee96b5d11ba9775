from typing import Annotated

from litestar import Controller, Request, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from server.core.context import Ctx
from server.points import services
from server.points.schemas import AdjustmentIn, EntryOut, LeaderboardOut, MyPointsOut, RuleIn, RuleOut, RulePatch

Year = Annotated[int | None, QueryParameter(ge=2000, le=2100)]


@get("/me/points", tags=["points"], summary="My points this year: total, star, rank in my branch, entries")
async def my_points(request: Request, ctx: Ctx, year: Year = None) -> MyPointsOut:
    return await services.my_points(ctx, request.user, year)


class PointsController(Controller):
    path = "/points"
    tags = ["points"]

    @get("/leaderboard", summary="Ranking of members within an org subtree")
    async def leaderboard(
        self,
        request: Request,
        ctx: Ctx,
        org_id: Annotated[int | None, QueryParameter(ge=1)] = None,
        year: Year = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> LeaderboardOut:
        return await services.leaderboard_for(ctx, request.user, org_id, year, limit)

    @post("/adjustments", summary="Reward or deduct points by hand, with a reason")
    async def adjust(self, request: Request, ctx: Ctx, data: JSONBody[AdjustmentIn]) -> EntryOut:
        return await services.adjust(ctx, request.user, data)

    @get("/rules", summary="Point rules")
    async def list_rules(self, ctx: Ctx) -> list[RuleOut]:
        return await services.list_rules(ctx)

    @post("/rules", summary="Create a rule (street admin)")
    async def create_rule(self, request: Request, ctx: Ctx, data: JSONBody[RuleIn]) -> RuleOut:
        return await services.create_rule(ctx, request.user, data)

    @patch("/rules/{rule_id:int}", summary="Edit or retire a rule; history keeps the old version")
    async def update_rule(self, request: Request, ctx: Ctx, rule_id: FromPath[int], data: JSONBody[RulePatch]) -> RuleOut:
        return await services.update_rule(ctx, request.user, rule_id, data)
