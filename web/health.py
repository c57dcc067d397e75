"""GET /healthz (the process answers), /readyz (it can do its work),
/metrics (Prometheus) and robots.txt."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from tortoise import connections

from gateway.core import metrics


async def healthz(request: Request) -> JSONResponse:
    """Alive: the event loop answers. (A database outage is /readyz's to
    report: restarting the process would not bring the database back.)"""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Ready: the database answers, every runner loop of this process can
    work, and no queue has a message waiting longer than
    CLIENTTRACK_READY_MAX_QUEUE_AGE. 503, naming what is wrong, otherwise."""
    deps = request.app.state.deps
    problems: dict[str, str] = dict(deps.health.problems())
    body: dict = {}
    try:
        await connections.get("default").execute_query("SELECT 1")
        queues = await metrics.queue_state(deps.clock())
    except Exception as exc:  # any database failure means not ready
        problems["database"] = f"{type(exc).__name__}: {exc}"[:300]
    else:
        body["queues"] = {name: {"depth": depth, "oldest_seconds": round(age, 1)}
                          for name, (depth, age) in queues.items()}
        limit = deps.settings.ready_max_queue_age
        for name, (_, age) in queues.items():
            if age > limit:
                problems[f"{name} queue"] = f"oldest message waiting {age:.0f}s (more than {limit:.0f}s)"
    body["status"] = "error" if problems else "ok"
    if problems:
        body["problems"] = problems
    return JSONResponse(body, status_code=503 if problems else 200)


async def metrics_page(request: Request) -> Response:
    return Response(await metrics.exposition(request.app.state.deps.clock()), media_type=CONTENT_TYPE_LATEST)


async def robots(request: Request) -> PlainTextResponse:
    return PlainTextResponse("User-agent: *\nDisallow: /r/\nDisallow: /staff/replies/\nDisallow: /demo/\n")


def routes() -> list[Route]:
    return [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics_page),
            Route("/robots.txt", robots)]
