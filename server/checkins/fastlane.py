"""A lean ASGI lane for the two hot routes, ``POST /checkins`` and ``POST /checkins/sync``.

Litestar's request machinery (router, exception layer, authentication middleware, Request object,
kwargs model, signature validation, dependency injection, Response object) costs more per check-in
than the database does. The lane answers the ordinary case itself: a member's bearer token, a JSON
body that decodes straight into the route's Struct, a processed batch → the same status, the same
headers and the same JSON bytes the Litestar handler would send. It runs in two places:

- in front of Litestar's handler (``install_outer_lane``): the normal way in;
- as route-level middleware inside the app's stack, for what the outer lane lets through
  (a cross-origin request under a CORS configuration, which needs the CORS layer's headers).

When ``serve`` runs the check-in writer process (SQLite), the lane forwards the member and the
body to it and sends back its answer (``server.checkins.writer``); whatever it cannot answer is
judged here, as without it.

Anything else — an oversized or streamed-oddly body, a body that does not decode or validate, a
caller who is not a member, a batch over the limit, any exception while processing — is handed to
the ordinary Litestar handler with the body replayed, so errors keep exactly their usual shape.
Handing over after an exception is safe: a failed write unit left nothing behind, and a unit that
did commit answers the replay with its stored results (check-ins are idempotent by client_uuid).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Litestar

from server.checkins import services
from server.checkins.schemas import MAX_BATCH, CheckinItemIn, CheckinResultOut, SyncIn, SyncOut
from server.core.auth import Principal, load_principal

ASGIApp = Callable[..., Any]

ENABLED = True  # off: every request takes the ordinary handler (tests compare the two)
_TRIED = "hongyi.lane_tried"  # scope key: a lane has had this request (the inner one does not try again)

_encode = msgspec.json.encode
_decode_item = msgspec.json.Decoder(CheckinItemIn).decode
_decode_sync = msgspec.json.Decoder(SyncIn).decode


def item_in(data: CheckinItemIn) -> services.Item:
    return services.Item(
        client_uuid=data.client_uuid, token=data.token, scanned_at=data.scanned_at, kind=data.kind,
        activity_id=data.activity_id, lat=data.lat, lng=data.lng, accuracy_m=data.accuracy_m,
    )


def result_out(result: services.Result) -> CheckinResultOut:
    return CheckinResultOut(
        client_uuid=result.client_uuid, status=result.status, reason=result.reason, checkin_id=result.checkin_id,
        activity_id=result.activity_id, station_id=result.station_id, points_awarded=result.points_awarded,
        message=result.message,
    )


def _member(user: Any) -> tuple[services.Actor, tuple[int, str, str]] | None:
    if not isinstance(user, Principal) or user.member_id is None or user.member_org_path is None:
        return None
    return (
        services.Actor(member_id=user.member_id, method="self"),
        (user.member_id, user.member_org_path, user.member_status or ""),
    )


async def _read_body(scope: dict[str, Any], receive: Any, limit: int | None) -> tuple[bytes | None, list[Any]]:
    """The whole body, or None when the ordinary handler should deal with the request; plus every
    message taken from ``receive`` (to be replayed on hand-over)."""
    is_json = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                if limit is not None and int(value) > limit:
                    return None, []
            except ValueError:
                return None, []
        elif name == b"content-type":
            is_json = value == b"application/json" or value.startswith(b"application/json;")
    if not is_json:
        return None, []
    messages: list[Any] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, messages
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            return None, messages
        chunks.append(chunk)
        if not message.get("more_body", False):
            return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), messages


def _replay(messages: list[Any], receive: Any) -> Any:
    pending = list(messages)

    async def replayed() -> Any:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


Who = tuple[services.Actor, tuple[int, str, str]]


async def answer_single(ctx: Any, who: Who, body: bytes) -> tuple[int, bytes] | None:
    """``POST /checkins`` for a member: (status, JSON), or None for the ordinary handler."""
    try:
        data = _decode_item(body)
    except msgspec.DecodeError:  # ValidationError included
        return None
    actor, member = who
    [result] = await services.CheckinProcessor(ctx).process(actor, [item_in(data)], member=member)
    return (422 if result.status == "rejected" else 200), _encode(result_out(result))


async def answer_sync(ctx: Any, who: Who, body: bytes) -> tuple[int, bytes] | None:
    """``POST /checkins/sync`` for a member: (status, JSON), or None for the ordinary handler."""
    try:
        data = _decode_sync(body)
    except msgspec.DecodeError:
        return None
    if len(data.items) > MAX_BATCH:
        return None
    actor, member = who
    results = await services.CheckinProcessor(ctx).process(actor, [item_in(i) for i in data.items], member=member)
    return 200, _encode(SyncOut(results=[result_out(r) for r in results]))


ANSWERS = (answer_single, answer_sync)  # by route number (the check-in writer's frames name them so)


def _route(number: int) -> Callable[[dict[str, Any], bytes], Any]:
    local = ANSWERS[number]

    async def answer(scope: dict[str, Any], body: bytes) -> tuple[int, bytes] | None:
        who = _member(scope.get("user"))
        if who is None:
            return None
        ctx = scope["litestar_app"].state.ctx
        if ctx.checkin_writer is not None:  # the check-in writer process, when serve started one
            answered = await ctx.checkin_writer.call(number, who[1], body)
            if answered is not None:
                return answered
        return await local(ctx, who, body)  # no writer, or it could not answer: judged here

    return answer


_single = _route(0)
_sync = _route(1)


async def _serve(scope: dict[str, Any], receive: Any, send: Any, answer: Any, downstream: ASGIApp) -> None:
    """Answer the request with ``answer``, or hand it (body replayed) to ``downstream``."""
    scope[_TRIED] = True
    body, seen = await _read_body(scope, receive, scope["litestar_app"].request_max_body_size)
    response = None
    if body is not None:
        try:
            response = await answer(scope, body)
        except Exception:  # noqa: BLE001 — the ordinary handler answers (and reports) it
            response = None
    if response is None:
        await downstream(scope, _replay(seen, receive), send)
        return
    status, payload = response
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
    })
    await send({"type": "http.response.body", "body": payload, "more_body": False})


def _lane(answer: Callable[[dict[str, Any], bytes], Any]) -> Callable[[ASGIApp], ASGIApp]:
    """Route-level middleware: the lane for requests the outer lane did not take (CORS, tests that
    call the route directly); runs after the auth middleware has set ``scope["user"]``."""
    def middleware(app: ASGIApp) -> ASGIApp:
        async def lane(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if not ENABLED or scope.get(_TRIED) or scope["type"] != "http" or scope["method"] != "POST":
                await app(scope, receive, send)
                return
            await _serve(scope, receive, send, answer, app)

        return lane

    return middleware


single_checkin_lane = _lane(_single)
sync_lane = _lane(_sync)


def install_outer_lane(app: Litestar, api_prefix: str = "/api/v1") -> None:
    """Put the lane in front of Litestar's own handler for the two hot paths.

    Litestar's router, exception layer and authentication middleware cost ≈ 40 µs a request — a
    sixth of a whole check-in. ``Litestar.__call__`` still runs (it sets ``scope["litestar_app"]``
    and wraps ``send`` with the before-send hooks, so the security headers are added as usual);
    the lane then authenticates the bearer the same way ``BearerAuthMiddleware`` does, from the
    same caches. Every request it does not answer goes on to Litestar unchanged: a missing or bad
    token (401 from the middleware), a cross-origin request when CORS is configured (the CORS
    layer adds its headers), any other path or method.
    """
    inner = app.asgi_handler
    hot = {f"{api_prefix}/checkins": _single, f"{api_prefix}/checkins/sync": _sync}
    cors = app.cors_config is not None

    async def outer_lane(scope: dict[str, Any], receive: Any, send: Any) -> None:
        answer = hot.get(scope.get("path", "")) if ENABLED and scope["type"] == "http" and scope["method"] == "POST" else None
        if answer is None or (cors and any(name == b"origin" for name, _ in scope["headers"])):
            await inner(scope, receive, send)
            return
        try:
            principal = await _bearer_principal(scope)
        except Exception:  # noqa: BLE001 — e.g. the database away: the middleware meets it again inside
            principal = None  # Litestar's exception layer, which answers 503 (out here it would be a 500)
        if principal is None:
            await inner(scope, receive, send)
            return
        scope["user"] = principal
        await _serve(scope, receive, send, answer, inner)

    app.asgi_handler = outer_lane


async def _bearer_principal(scope: dict[str, Any]) -> Principal | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token:
                return None
            ctx = scope["litestar_app"].state.ctx
            user_id = ctx.tokens.verify_access(token.strip())
            return None if user_id is None else await load_principal(ctx, user_id)
    return None
