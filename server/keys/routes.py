from litestar import Response, get

from server.core.context import Ctx
from server.stations.services import active_kiosk_jwks


@get("/keys", opt={"exclude_from_auth": True}, tags=["keys"], summary="JWKS: server keys and active kiosk keys")
async def jwks(ctx: Ctx) -> Response[dict[str, list[dict[str, str]]]]:
    keys = ctx.tokens.keyring.jwks() + await active_kiosk_jwks(ctx)
    # Short cache: a revoked kiosk disappears from phones' verification within a minute of going online.
    return Response({"keys": keys}, headers={"Cache-Control": "public, max-age=60"})
