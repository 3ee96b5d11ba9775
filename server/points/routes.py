from typing import Annotated

from litestar import Controller, Request, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from server.core.context import Ctx
from server.points import race, services
from server.points.schemas import (
    AdjustmentIn,
    BranchRaceOut,
    EntryOut,
    LeaderboardOut,
    MyPointsOut,
    RuleIn,
    RuleOut,
    RulePatch,
    RuleVersionOut,
    TrendOut,
)

Year = Annotated[int | None, QueryParameter(ge=2000, le=2100)]
Quarter = Annotated[int | None, QueryParameter(ge=1, le=4)]
Month = Annotated[int | None, QueryParameter(ge=1, le=12)]
OrgId = Annotated[int | None, QueryParameter(ge=1)]


@get("/me/points", tags=["points"], summary="My points in a year, quarter or month: total, star, rank in my branch, entries")
async def my_points(request: Request, ctx: Ctx, year: Year = None, quarter: Quarter = None, month: Month = None) -> MyPointsOut:
    return await services.my_points(ctx, request.user, services.period_of(ctx, year, quarter, month))


class PointsController(Controller):
    path = "/points"
    tags = ["points"]

    @get("/leaderboard", summary="Ranking of members within an org subtree for a year, quarter or month")
    async def leaderboard(
        self,
        request: Request,
        ctx: Ctx,
        org_id: OrgId = None,
        year: Year = None,
        quarter: Quarter = None,
        month: Month = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> LeaderboardOut:
        period = services.period_of(ctx, year, quarter, month)
        return await services.leaderboard_for(ctx, request.user, org_id, period, limit)

    @get("/branches", summary="Branch 赛马: members, average points, required attendance, score, band")
    async def branches(
        self, request: Request, ctx: Ctx, org_id: OrgId = None, year: Year = None, quarter: Quarter = None,
        month: Month = None,
    ) -> BranchRaceOut:
        period = services.period_of(ctx, year, quarter, month)
        return await race.branch_race(ctx, request.user, org_id, period)

    @get("/trend", summary="Points per branch and local month of a year (12 numbers each)")
    async def trend(self, request: Request, ctx: Ctx, org_id: OrgId = None, year: Year = None) -> TrendOut:
        return await race.trend(ctx, request.user, org_id, services.period_of(ctx, year, None, None).year)

    @post("/adjustments", summary="Reward or deduct points by hand (or 党费逾期), with a reason")
    async def adjust(self, request: Request, ctx: Ctx, data: JSONBody[AdjustmentIn]) -> EntryOut:
        return await services.adjust(ctx, request.user, data)

    @get("/rules", summary="Point rules")
    async def list_rules(self, ctx: Ctx) -> list[RuleOut]:
        return await services.list_rules(ctx)

    @post("/rules", summary="Create a rule (street admin)")
    async def create_rule(self, request: Request, ctx: Ctx, data: JSONBody[RuleIn]) -> RuleOut:
        return await services.create_rule(ctx, request.user, data)

    @patch("/rules/{rule_id:int}", summary="Edit or retire a rule; each edit is a new version, history keeps the old")
    async def update_rule(self, request: Request, ctx: Ctx, rule_id: FromPath[int], data: JSONBody[RulePatch]) -> RuleOut:
        return await services.update_rule(ctx, request.user, rule_id, data)

    @get("/rules/{rule_id:int}/versions", summary="Every version of a rule: what it said, who changed it, when")
    async def rule_versions(self, ctx: Ctx, rule_id: FromPath[int]) -> list[RuleVersionOut]:
        return await services.rule_versions(ctx, rule_id)
