from typing import Annotated

from litestar import Controller, Request, get, patch, post
from litestar.params import Parameter

from server.core.context import Context
from server.points import services
from server.points.schemas import AdjustmentIn, EntryOut, LeaderboardOut, MyPointsOut, RuleIn, RuleOut, RulePatch

Year = Annotated[int | None, Parameter(ge=2000, le=2100)]


@get("/me/points", tags=["points"], summary="My points this year: total, star, rank in my branch, entries")
async def my_points(request: Request, ctx: Context, year: Year = None) -> MyPointsOut:
    return await services.my_points(ctx, request.user, year)


class PointsController(Controller):
    path = "/points"
    tags = ["points"]

    @get("/leaderboard", summary="Ranking of members within an org subtree")
    async def leaderboard(
        self,
        request: Request,
        ctx: Context,
        org_id: Annotated[int | None, Parameter(ge=1)] = None,
        year: Year = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    ) -> LeaderboardOut:
        return await services.leaderboard_for(ctx, request.user, org_id, year, limit)

    @post("/adjustments", summary="Reward or deduct points by hand, with a reason")
    async def adjust(self, request: Request, ctx: Context, data: AdjustmentIn) -> EntryOut:
        return await services.adjust(ctx, request.user, data)

    @get("/rules", summary="Point rules")
    async def list_rules(self, ctx: Context) -> list[RuleOut]:
        return await services.list_rules(ctx)

    @post("/rules", summary="Create a rule (street admin)")
    async def create_rule(self, request: Request, ctx: Context, data: RuleIn) -> RuleOut:
        return await services.create_rule(ctx, request.user, data)

    @patch("/rules/{rule_id:int}", summary="Edit or retire a rule; history keeps the old version")
    async def update_rule(self, request: Request, ctx: Context, rule_id: int, data: RulePatch) -> RuleOut:
        return await services.update_rule(ctx, request.user, rule_id, data)
