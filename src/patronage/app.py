"""The application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from patronage import __version__, domains
from patronage.config import Settings, get_settings
from patronage.kit.db import Database, make_database
from patronage.kit.http import problems
from patronage.kit.http.middleware import BodySizeLimit, RequestContext
from patronage.kit.ops import router as ops_router

API_PREFIX = "/api/v1"


def create_app(
    settings: Settings | None = None, *, db: Database | None = None, run_worker: bool = False
) -> FastAPI:
    settings = settings or get_settings()
    database = db or make_database(settings)
    domains.load_tasks()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        workers = []
        if run_worker:
            from patronage.kit.jobs.worker import start_worker_threads

            workers = start_worker_threads(database, settings)
        try:
            yield
        finally:
            from patronage.events.group_commit import stop_committer

            stop_committer(app.state)  # writes what is queued, before the database goes away
            for worker, thread in workers:
                worker.stop()
                thread.join(timeout=10)
            if db is None:
                database.dispose()

    app = FastAPI(
        title="Patronage",
        version=__version__,
        description="Customer loyalty and retention platform API. Errors are RFC 9457 problem+json.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = database
    problems.install(app)
    app.include_router(ops_router)  # first: probes match without walking the whole route table
    for router in domains.routers():
        app.include_router(router, prefix=API_PREFIX, responses=problems.PROBLEM_RESPONSES)
    from patronage.web.routes import mount as mount_web

    mount_web(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContext)
    return app
