from litestar import Response, get
from litestar.openapi.datastructures import ResponseSpec

from server.core.context import Ctx
from server.core.db import DatabaseUnavailable


@get(
    "/health", opt={"exclude_from_auth": True}, tags=["health"], summary="Liveness and database reachability",
    responses={503: ResponseSpec(dict[str, str], description="Degraded: the database is unreachable", generate_examples=False)},
)
async def health(ctx: Ctx) -> Response[dict[str, str]]:
    try:
        await ctx.db.fetchval("SELECT 1")
        return Response({"status": "ok", "database": "ok", "engine": ctx.db.dialect}, headers={"Cache-Control": "no-store"})
    except (DatabaseUnavailable, OSError):
        return Response(
            {"status": "degraded", "database": "unavailable", "engine": ctx.db.dialect}, status_code=503,
            headers={"Cache-Control": "no-store"},
        )
