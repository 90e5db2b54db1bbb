"""The ASGI application: the control API, event ingest and health, over one Node.

``create_app`` builds the FastAPI application; ``create_asgi`` puts the invoke fast
path (``api.fastpath``) in front of it, which is what ``triggerfish up`` serves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from triggerfish import __version__
from triggerfish.api import (
    aliases,
    backup,
    brokers,
    builds,
    chains,
    costs,
    executions,
    functions,
    health,
    http_routes,
    idempotency,
    invocation_stream,
    invocations,
    keys,
    lambda_,
    metrics,
    nodes,
    problems,
    secrets,
    status,
    tokens,
    topics,
    webhooks,
    whoami,
)
from triggerfish.api.fastpath import FastPath
from triggerfish.api.limits import BodyLimits, HeadLimits, IngressLimits
from triggerfish.api.openapi import Application
from triggerfish.api.producers import Producers
from triggerfish.api.s3 import S3Middleware, default_domains
from triggerfish.console import create_router as console_router
from triggerfish.errors import TriggerfishError

if TYPE_CHECKING:
    from triggerfish.node import Node


def create_app(
    node: Node,
    *,
    manage_node: bool = True,
    on_start: Callable[[Node], Awaitable[None]] | None = None,
) -> FastAPI:
    """``manage_node``: start the node with the app and stop it at shutdown (inside the
    server's lifespan, so a SIGTERM lets the node drain before the process ends).
    ``on_start`` runs once the node is up (``up --deploy`` uses it)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_node:
            await node.start()
        try:
            if on_start is not None:
                await on_start(node)
            yield
        finally:
            if manage_node:
                await node.stop()

    app = Application(
        title="Triggerfish",
        version=__version__,
        description="Event-driven functions: topics, triggers, invocations.",
        lifespan=lifespan,
    )
    app.state.node = node
    app.add_exception_handler(TriggerfishError, problems.triggerfish_error)
    app.add_exception_handler(RequestValidationError, problems.request_validation_error)
    app.add_exception_handler(StarletteHTTPException, problems.http_error)
    for router in (
        topics.router,
        functions.router,
        aliases.router,
        invocation_stream.router,  # before invocations': /stream is no invocation id
        invocations.router,
        executions.router,
        chains.router,
        builds.router,
        costs.router,
        webhooks.router,
        brokers.router,
        secrets.router,
        nodes.router,
        status.router,
        backup.router,
        whoami.router,
        idempotency.router,
        keys.create_router(node.access_keys),
        tokens.create_router(node.tokens),
    ):
        app.include_router(router, responses=problems.RESPONSES)
    app.include_router(metrics.router)
    app.include_router(console_router())
    app.include_router(lambda_.create_router(node), responses=lambda_.RESPONSES)
    app.include_router(lambda_.create_durable_router(node), responses=lambda_.RESPONSES)
    # After every other Lambda route: it answers the paths none of them serves.
    app.include_router(lambda_.create_account_router(node), responses=lambda_.RESPONSES)
    app.add_middleware(
        S3Middleware,
        buckets=node.buckets,
        keys=node.access_keys,
        domains=default_domains(node.settings.host),
        settings=node.control.bucket_settings,
        disk=node.disk,
    )
    # In front of S3's: it takes only EventBridge's and SQS's X-Amz-Target requests.
    app.add_middleware(Producers, node=node)
    # Outermost of the application's own middleware: limits before any work (S3's too).
    settings = node.settings
    app.add_middleware(
        IngressLimits,
        heads=HeadLimits(size=settings.header_size_limit, count=settings.header_count_limit),
        bodies=BodyLimits(settings, domains=default_domains(settings.host)),
    )

    app.include_router(health.router)
    # Last: it answers every method under /fn for the functions' HTTP routes.
    app.include_router(http_routes.router)
    return app


def create_asgi(
    node: Node,
    *,
    manage_node: bool = True,
    on_start: Callable[[Node], Awaitable[None]] | None = None,
) -> FastPath:
    """``create_app`` behind the invoke fast path: the application ``up`` serves."""
    app = create_app(node, manage_node=manage_node, on_start=on_start)
    return FastPath(app, node=node)
