"""The ASGI application: routes, the API key, request bodies read defensively, and the glue
between a request's task and the engine thread (streamed as server-sent events or whole).

Starlette because it is the small, well-kept core under FastAPI: the request models live in
responses_api/chat_api (whose errors must be the OpenAI shape, not FastAPI's 422), so FastAPI's
validation layer would only be in the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..events import Done, Event
from . import chat_api, responses_api
from .errors import ApiError, bad_request, context_exceeded, not_found
from .fields import Fields
from .hosted_tools import ServerTools
from .prompting import sampling
from .runner import EngineRunner, Failure, Generation, QueueFull, ReplyStream
from .store import ResponseStore, StoredResponse

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
DISCONNECT_POLL_SECONDS = 0.2


@dataclass
class ServerSettings:
    model_id: str  # the id /v1/models lists; requests may name it or any of `aliases`
    aliases: tuple[str, ...] = ()
    api_key: str | None = None
    start_date: Callable[[], str] = lambda: datetime.date.today().isoformat()
    max_body_bytes: int = MAX_BODY_BYTES
    tools: ServerTools | None = None  # the model's own tools, run here for every request


def create_app(runner: EngineRunner, store: ResponseStore, settings: ServerSettings) -> Starlette:
    api = _Api(runner, store, settings)
    routes = [
        Route("/health", api.health, methods=["GET"]),
        Route("/v1/models", api.models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", api.model, methods=["GET"]),
        Route("/v1/responses", api.create_response, methods=["POST"]),
        Route("/v1/responses/{response_id}", api.get_response, methods=["GET"]),
        Route("/v1/chat/completions", api.chat_completions, methods=["POST"]),
    ]

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        kind = "not_found" if error.status_code == 404 else "invalid_request_error"
        return _error_response(ApiError(error.status_code, f"{request.method} {request.url.path}: {error.detail}",
                                        kind=kind))

    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


def _error_response(error: ApiError) -> JSONResponse:
    headers = {"Retry-After": "1"} if error.status == 429 else None
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


def _sse(data: dict[str, Any], event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _handler(method):
    """Authorise, then turn every ApiError (and any other failure) into the API's error shape."""

    async def handle(self: "_Api", request: Request) -> Response:
        try:
            self._authorise(request)
            return await method(self, request)
        except ApiError as error:
            return _error_response(error)
        except ClientDisconnect:
            return Response(status_code=499)
        except Exception as error:  # a bug: say so in the API's shape rather than drop the connection
            log.exception("request failed")
            return _error_response(ApiError(500, f"internal error: {type(error).__name__}: {error}",
                                            kind="server_error"))

    return handle


class _Api:
    def __init__(self, runner: EngineRunner, store: ResponseStore, settings: ServerSettings) -> None:
        self.runner = runner
        self.store = store
        self.settings = settings
        self.created = int(time.time())

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def engine(self):
        """The engine now loaded (in the app the user may be loading another, or none)."""
        engine = self.runner.engine
        if engine is None:
            raise ApiError(503, "No model is loaded; open one in the app and try again.", kind="server_error",
                           code="model_not_loaded")
        return engine

    def _authorise(self, request: Request) -> None:
        key = self.settings.api_key
        if key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
            raise ApiError(401, "Incorrect API key provided. Pass the server's key as 'Authorization: Bearer KEY'.",
                           code="invalid_api_key")

    async def _body(self, request: Request) -> Fields:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"the request body of {declared} bytes is over the limit of {limit}",
                           code="request_too_large")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"the request body is over the limit of {limit} bytes", code="request_too_large")
            chunks.append(chunk)
        try:
            data = json.loads(b"".join(chunks))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise bad_request(f"the request body is not valid JSON: {error}") from error
        return Fields(data)

    def _check_model(self, body: Fields, required: bool) -> None:
        model = body.require("model", str) if required else body.get("model", str)
        if model is not None and model not in (self.settings.model_id, *self.settings.aliases):
            raise not_found(f"The model '{model}' does not exist; this server serves '{self.settings.model_id}'",
                            "model", "model_not_found")

    def _generate(self, generation: Generation) -> ReplyStream:
        try:
            return self.runner.generate(generation, asyncio.get_running_loop())
        except QueueFull as error:
            raise ApiError(429, f"{error}; try again shortly", kind="rate_limit_exceeded",
                           code="queue_full") from error

    async def _first_event(self, request: Request, stream: ReplyStream) -> Event:
        """Wait for the engine to start the reply (the queue and the prefill), cancelling if the
        client leaves meanwhile; a prompt beyond the context is a 400 here, before any stream."""
        async with _cancel_on_disconnect(request, stream):
            event = await stream.next()
        return self._checked(event)

    def _checked(self, event: Event | Failure | None) -> Event:
        if isinstance(event, Failure) or event is None:
            raise ApiError(500, f"generation failed: {getattr(event, 'message', 'no reply')}", kind="server_error")
        if isinstance(event, Done) and event.reason == "context_full":
            raise context_exceeded(event.detail)
        if isinstance(event, Done) and event.reason == "error":  # refused before any token: the
            raise bad_request(event.detail)  # format or a strict tool cannot be enforced
        return event

    def _tools_for(self, conversation, tools_visible: bool) -> ServerTools | None:
        """The server's tools for this request (none when the client asked for no tools)."""
        tools = self.settings.tools
        if tools is None or not tools_visible:
            return None
        tools.declare(conversation)
        return tools

    def _count_tokens(self, text: str) -> int:
        return len(self.engine.tokenizer.encode(text))

    def _remember_reasoning(self, reader, item_ids: dict[int, str] | None = None) -> None:
        """What a client will not send back in full: the reasoning behind its function calls,
        and the calls the server's tools answered (by item id, and before the client's call)."""
        calls = [part.call_id for part in reader.calls]
        if calls and reader.reasoning:
            self.store.remember_reasoning(calls, reader.reasoning)
        if calls and reader.tool_rounds:
            self.store.remember_tool_rounds(calls[0], reader.tool_rounds)
        for part in reader.parts:
            if item_ids and part.round_messages:
                self.store.remember_tool_rounds(item_ids[part.index], part.round_messages)

    # -- routes --------------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "in_flight": self.runner.in_flight})

    def _model_card(self) -> dict[str, Any]:
        return {"id": self.settings.model_id, "object": "model", "created": self.created, "owned_by": "local"}

    @_handler
    async def models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [self._model_card()]})

    @_handler
    async def model(self, request: Request) -> Response:
        if request.path_params["model_id"] not in (self.settings.model_id, *self.settings.aliases):
            raise not_found(f"The model '{request.path_params['model_id']}' does not exist", "model",
                            "model_not_found")
        return JSONResponse(self._model_card())

    @_handler
    async def get_response(self, request: Request) -> Response:
        response_id = request.path_params["response_id"]
        stored = self.store.load(response_id)
        if stored is None:
            raise not_found(f"No response with id '{response_id}' is stored", "response_id")
        return JSONResponse(stored.response)

    @_handler
    async def create_response(self, request: Request) -> Response:
        body = await self._body(request)
        self._check_model(body, required=False)
        parsed = responses_api.read_request(body)
        chain: list[dict[str, Any]] = []
        start_date = self.settings.start_date()
        if parsed.previous_response_id is not None:
            previous = self.store.load(parsed.previous_response_id)
            if previous is None:
                raise not_found(f"Previous response with id '{parsed.previous_response_id}' not found.",
                                "previous_response_id", "previous_response_not_found")
            chain = previous.input_items + previous.response["output"]
            start_date = previous.start_date
        items = chain + parsed.input_items
        conversation = responses_api.conversation_for(items, parsed, start_date, self.store)
        settings = sampling(body, ("max_output_tokens",), self.engine.info.context_limit)
        tools = self._tools_for(conversation, parsed.choice.tools_visible)
        builder = responses_api.ResponseBuilder(parsed, self.settings.model_id, self._count_tokens, tools)
        stream = self._generate(Generation(conversation, settings, response_format=parsed.response_format,
                                           tool_choice=parsed.choice.engine, tools=tools))
        first = await self._first_event(request, stream)

        def finish() -> list[dict[str, Any]]:
            closing = builder.closing()
            self._remember_reasoning(builder.reader, builder.item_ids)
            if parsed.store and builder.response["status"] in ("completed", "incomplete"):
                self.store.save(StoredResponse(builder.response, items, start_date))
            return closing

        if not parsed.stream:
            await _collect(request, stream, first, builder.feed)
            finish()
            return JSONResponse(builder.response)

        async def events() -> AsyncIterator[str]:
            try:
                for event in builder.opening() + builder.feed(first):
                    yield _sse(event, event["type"])
                while (event := await stream.next()) is not None:
                    if isinstance(event, Failure):
                        for failed in builder.fail(event.message):
                            yield _sse(failed, failed["type"])
                        return
                    for out in builder.feed(event):
                        yield _sse(out, out["type"])
                for out in finish():
                    yield _sse(out, out["type"])
            finally:
                stream.cancel()  # the client left mid-stream: stop at the next token

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @_handler
    async def chat_completions(self, request: Request) -> Response:
        body = await self._body(request)
        self._check_model(body, required=False)
        parsed = chat_api.read_request(body)
        conversation = chat_api.conversation_for(parsed, self.settings.start_date(), self.store)
        settings = sampling(body, ("max_completion_tokens", "max_tokens"), self.engine.info.context_limit)
        tools = self._tools_for(conversation, parsed.choice.tools_visible)
        builder = chat_api.CompletionBuilder(self.settings.model_id, self._count_tokens, tools.runs if tools else None)
        stream = self._generate(Generation(conversation, settings, response_format=parsed.response_format,
                                           tool_choice=parsed.choice.engine, tools=tools))
        first = await self._first_event(request, stream)

        if not parsed.stream:
            await _collect(request, stream, first, builder.feed)
            self._remember_reasoning(builder.reader)
            return JSONResponse(builder.completion())

        async def chunks() -> AsyncIterator[str]:
            try:
                for chunk in [builder.opening(), *builder.feed(first)]:
                    yield _sse(chunk)
                while (event := await stream.next()) is not None:
                    if isinstance(event, Failure):
                        yield _sse({"error": {"message": f"generation failed: {event.message}",
                                              "type": "server_error", "param": None, "code": None}})
                        return
                    for chunk in builder.feed(event):
                        yield _sse(chunk)
                self._remember_reasoning(builder.reader)
                for chunk in builder.closing(parsed.include_usage):
                    yield _sse(chunk)
                yield "data: [DONE]\n\n"
            finally:
                stream.cancel()

        return StreamingResponse(chunks(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def _collect(request: Request, stream: ReplyStream, first: Event, feed: Callable[[Event], Any]) -> None:
    """Feed a whole reply to a builder (no streaming), cancelling if the client leaves."""
    feed(first)
    async with _cancel_on_disconnect(request, stream):
        while (event := await stream.next()) is not None:
            if isinstance(event, Failure):
                raise ApiError(500, f"generation failed: {event.message}", kind="server_error")
            feed(event)


@contextlib.asynccontextmanager
async def _cancel_on_disconnect(request: Request, stream: ReplyStream):
    """While the body runs, a client that closes its connection cancels the generation."""

    async def watch() -> None:
        while not await request.is_disconnected():
            await asyncio.sleep(DISCONNECT_POLL_SECONDS)
        stream.cancel()

    watcher = asyncio.create_task(watch())
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
