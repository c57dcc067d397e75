"""GET /healthz (the database answers) and robots.txt."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from tortoise import connections


async def healthz(request: Request) -> JSONResponse:
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception as exc:  # any database failure means unhealthy
        return JSONResponse({"status": "error", "database": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ok"})


async def robots(request: Request) -> PlainTextResponse:
    return PlainTextResponse("User-agent: *\nDisallow: /r/\nDisallow: /demo/\n")


def routes() -> list[Route]:
    return [Route("/healthz", healthz), Route("/robots.txt", robots)]
