"""Schemathesis against /schema/openapi.json (issue 6): no 5xx, every answer as documented, every error
with a ``code`` and a Chinese ``detail`` — as anonymous, member, staff and admin, on both engines.

The run is seeded (the same cases every time) and bounded: 30 cases per operation, ≈ 2,300 per
engine in well under a minute. ``bash scripts/fuzz.sh`` is the long run (10,000+ per engine).
The driver is tests/fuzzing.py; the targeted tests below pin what the fuzzing found.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import World, has_chinese
from tests.fuzzing import ROLES, error_body_problem, prepare_identities, run_fuzz

CASES_PER_OPERATION = 30
MIN_CASES = 2_000


async def test_fuzz_the_openapi_document(world: World) -> None:
    identities = await prepare_identities(world.ctx, minutes=30)
    report = await asyncio.to_thread(
        run_fuzz, world.app, asyncio.get_running_loop(), world.client, identities,
        examples_per_operation=CASES_PER_OPERATION,
    )
    print(f"\n[{world.backend}] " + report.summary())
    assert report.cases >= MIN_CASES, report.summary()
    assert all(report.by_role[role] >= MIN_CASES // 8 for role in ROLES), report.by_role
    assert report.by_mode["positive"] and report.by_mode["negative"], report.by_mode
    assert sum(n for status, n in report.statuses.items() if 200 <= status < 300) > 100, report.statuses
    assert report.server_errors == 0, report.summary()
    assert not report.findings, report.summary()


async def test_the_fuzz_identities_stay_signed_in(world: World) -> None:
    """The run is only worth something if member, staff and admin get past sign-in throughout."""
    identities = await prepare_identities(world.ctx, minutes=30)
    await asyncio.to_thread(
        run_fuzz, world.app, asyncio.get_running_loop(), world.client, identities,
        examples_per_operation=8, only=["/members", "/grants"],
    )
    for role in ("member", "staff", "admin"):
        response = await world.client.get("/api/v1/me", headers={"authorization": f"Bearer {identities.tokens[role]}"})
        assert response.status_code == 200, (role, response.text)


@pytest.mark.parametrize("path", [
    "/api/v1/members/99999999999999999999",
    "/api/v1/stations/9223372036854775808",
    "/api/v1/activities/123456789012345678901234567890/attendance",
    "/api/v1/volunteer-hours/-9223372036854775809",
])
async def test_an_id_beyond_64_bits_is_a_400(world: World, path: str) -> None:
    admin = await world.admin()
    response = await admin.get(path)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "out_of_range"
    assert has_chinese(response.json()["detail"])


async def test_an_id_beyond_32_bits_is_a_4xx_on_either_engine(world: World) -> None:
    """Ids are 32-bit on PostgreSQL and 64-bit on SQLite: 400 out_of_range there, 404 here."""
    admin = await world.admin()
    for path in ("/api/v1/members/99999999999", "/api/v1/volunteer-hours/4294967296", "/api/v1/stations/2147483648"):
        response = await admin.get(path)
        assert response.status_code in (400, 404), (path, response.text)
        assert response.json()["code"] in ("out_of_range", "not_found")
        assert has_chinese(response.json()["detail"])


async def test_a_huge_number_in_a_body_is_a_4xx_and_stores_nothing(world: World) -> None:
    admin = await world.admin()
    before = await world.count("SELECT COUNT(*) FROM orgs")
    response = await admin.post("/api/v1/orgs", json={"parent_id": 2**70, "name": "K1", "kind": "branch"})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "out_of_range"
    response = await admin.post("/api/v1/orgs", json={"parent_id": 10_173_714_470, "name": "K1", "kind": "branch"})
    assert response.status_code in (400, 404), response.text
    assert await world.count("SELECT COUNT(*) FROM orgs") == before


async def test_openapi_documents_errors_and_file_types(world: World) -> None:
    schema = (await world.client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    error_ref = {"$ref": "#/components/schemas/ErrorOut"}
    for path, operations in paths.items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("400", "401", "403", "404", "503"):
                assert status in responses, (method, path, status)
            if method != "get":
                assert {"409", "413", "422"} <= responses.keys(), (method, path)
    assert schema["components"]["schemas"]["ErrorOut"]["required"] == ["code", "detail", "status_code"]
    assert paths["/api/v1/orgs"]["post"]["responses"]["404"]["content"]["application/json"]["schema"] == error_ref
    rejected = paths["/api/v1/checkins"]["post"]["responses"]["422"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/CheckinResultOut"} in rejected["oneOf"] and error_ref in rejected["oneOf"]
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert list(paths["/api/v1/reports/points.xlsx"]["get"]["responses"]["200"]["content"]) == [xlsx]
    poster = paths["/api/v1/stations/{station_id}/poster"]["get"]["responses"]["200"]["content"]
    assert set(poster) == {"image/svg+xml", "application/pdf", "image/png", "application/json"}
    assert "content" not in paths["/api/v1/auth/logout"]["post"]["responses"]["204"]


def test_the_error_body_check_catches_bad_bodies() -> None:
    def answer(status: int, body: object) -> httpx.Response:
        return httpx.Response(status, json=body)

    assert error_body_problem(answer(404, {"status_code": 404, "code": "not_found", "detail": "活动不存在"})) is None
    assert error_body_problem(answer(200, {"anything": 1})) is None
    assert error_body_problem(answer(400, {"status_code": 400, "detail": "缺少字段"}))  # no code
    assert error_body_problem(answer(400, {"status_code": 400, "code": "bad", "detail": "Bad Request"}))  # English
    assert error_body_problem(answer(409, {"status_code": 400, "code": "x", "detail": "冲突"}))  # wrong status_code
    assert error_body_problem(httpx.Response(500, text="Internal Server Error"))  # not JSON
    rejected = {"status": "rejected", "reason": "malformed", "message": "二维码内容无法识别"}
    assert error_body_problem(answer(422, rejected)) is None
    assert error_body_problem(answer(422, {**rejected, "message": "unreadable"}))
