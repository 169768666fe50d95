"""Running one job: a few small named steps from a claimed row to an outcome.

Running and recording are separate: ``execute`` never writes job state (the task itself may, via
``update_state``); it returns an ``Outcome`` (djq.records) that the worker records in a batch with
``store.complete``. ``djq.eager`` runs the same steps inline for ``Task.apply``.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import logging
import signal
import threading
import time
import traceback as traceback_module
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

from djq import signals, states
from djq.calling import request as request_context
from djq.calling.registry import tasks
from djq.exceptions import (
    Ignore,
    NotRegistered,
    Reject,
    Retry,
    SoftTimeLimitExceeded,
    TaskRevokedError,
)
from djq.options import resolve_options
from djq.records import Claim, Outcome
from djq.running import task_log
from djq.running.retry import autoretry_countdown
from djq.serialization import dict_to_exception, dumps, exception_to_dict, loads, safe_text

if TYPE_CHECKING:
    from djq.task import Task


class ExceptionInfo:
    """What hooks receive as ``einfo`` (Celery's attributes)."""

    def __init__(self, exc: BaseException) -> None:
        self.exception = exc
        self.type = type(exc)
        self.tb = exc.__traceback__
        self.traceback = "".join(traceback_module.format_exception(exc))

    def __str__(self) -> str:
        return self.traceback


def execute(job: Claim, hostname: str = "", soft_time_limit: float | None = None) -> Outcome:
    """Run a claimed job (from ``store.claim``) and return its outcome."""
    started = time.monotonic()
    base = {"id": job.id, "attempt": job.attempt, "name": job.name}
    if _expired(job):  # checked again here: a prefetched job may expire while it waits
        exc = TaskRevokedError("expired")
        return Outcome(
            **base, state=states.REVOKED, result=dumps(exception_to_dict(exc)), repr=repr(exc)
        )
    try:
        task = tasks[job.name]
        args, kwargs, options = _decode_payload(job)
    except (NotRegistered, TypeError, ValueError) as exc:
        return Outcome.of({**base, **_failed(exc, ExceptionInfo(exc))})
    req = request_context.Request(
        id=job.id,
        task=task.name,
        args=args,
        kwargs=kwargs,
        retries=job.retries,
        max_retries=job.max_retries,
        attempt=job.attempt,
        eta=job.eta,
        expires=job.expires,
        hostname=hostname,
        delivery_info={"queue": job.queue, "priority": job.priority},
        parent_id=job.parent_id,
        root_id=job.root_id,
        group=job.group_id,
        headers=options.get("headers") or {},
        options=options,
        called_directly=False,
    )
    limits = resolve_options(task, options)
    soft = limits["soft_time_limit"] if soft_time_limit is None else soft_time_limit
    kept: dict[str, Any] = {}
    with task_log.capture(kept):  # the attempt's log records travel with its outcome
        outcome = run_task(task, req, soft_time_limit=soft)
    outcome.update(kept)
    if limits["ignore_result"] and outcome["state"] == states.SUCCESS:
        outcome["keep_result"] = False
    return Outcome.of({**base, **outcome, "runtime": time.monotonic() - started})


def _expired(job: Claim) -> bool:
    """Whether the job's ``expires`` has passed (by this machine's clock)."""
    expires = job.expires
    if not expires:
        return False
    if isinstance(expires, str):  # a prefork child gets the claimed row as JSON
        expires = dt.datetime.fromisoformat(expires)
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=dt.UTC)
    return expires <= dt.datetime.now(dt.UTC)


def _decode_payload(job: Claim) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    args, kwargs = loads(job.args), loads(job.kwargs)
    options = loads(job.options) or {}
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise TypeError(
            f"malformed job payload: args must be a JSON array and kwargs a JSON object, got "
            f"{type(args).__name__} and {type(kwargs).__name__}"
        )
    if options.get("errback") and len(args) >= 3:
        args = _errback_arguments(args)
    return args, kwargs, options


def _errback_arguments(args: list[Any]) -> list[Any]:
    """A new-style errback (``def on_error(request, exc, traceback)``) gets, as in Celery, the
    failed job's request and its exception (they travel as JSON: rebuilt here)."""
    request, exc, traceback = args[0], args[1], args[2]
    if isinstance(request, dict):
        request = request_context.Request(**request, called_directly=False)
    if isinstance(exc, dict) and "exc_type" in exc:
        exc = dict_to_exception(exc)
    return [request, exc, traceback, *args[3:]]


def run_task(
    task: Task,
    req: request_context.Request,
    soft_time_limit: float | None = None,
    keep_exception: bool = False,
) -> dict[str, Any]:
    """The execute pipeline: prerun → before_start → call → outcome → hooks → postrun.

    ``after_return`` and ``task_postrun`` get the return value, or the exception (as in Celery).
    With ``keep_exception`` (eager runs) a failure's outcome carries the exception object itself.
    """
    args, kwargs = req.args, req.kwargs
    request_context.push(req)
    signals.task_prerun.send(sender=task, task_id=req.id, task=task, args=args, kwargs=kwargs)
    retval: Any = None
    try:
        task.before_start(req.id, args, kwargs)
        with soft_limit(soft_time_limit):
            retval = _call(task, req, args, kwargs)
        outcome = _succeeded(task, req, retval)
    except Retry as retry:
        retval, outcome = retry, _retried(task, req, retry)
    except Ignore:
        outcome = {"state": states.IGNORED, "result": None, "keep_result": False}
    except Reject as reject:
        retval, outcome = reject, _rejected(task, req, reject)
    except Exception as exc:
        retval, outcome = exc, _task_failed(task, req, exc)
    finally:
        request_context.pop()
    einfo = outcome.pop("_einfo", None)
    if keep_exception and einfo is not None and outcome["state"] == states.FAILURE:
        outcome["exception"] = einfo.exception
    try:
        task.after_return(outcome["state"], retval, req.id, args, kwargs, einfo)
    finally:
        signals.task_postrun.send(
            sender=task,
            task_id=req.id,
            task=task,
            args=args,
            kwargs=kwargs,
            retval=retval,
            state=outcome["state"],
        )
    return outcome


def _call(task: Task, req: request_context.Request, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if not task.autoretry_for:
        return task.run(*args, **kwargs)
    try:
        return task.run(*args, **kwargs)
    except (Retry, Ignore, Reject):
        raise
    except task.autoretry_for as exc:
        countdown = autoretry_countdown(task, req.retries)
        retry_kwargs = dict(task.retry_kwargs or {})
        if countdown is not None:
            retry_kwargs["countdown"] = countdown
        raise task.retry(exc=exc, **retry_kwargs) from exc


def _succeeded(task: Task, req: request_context.Request, retval: Any) -> dict[str, Any]:
    try:
        result = dumps(retval)
    except TypeError as exc:
        error = TypeError(
            f"{task.name}: return value of type {type(retval).__name__} "
            f"cannot be stored as JSON ({exc})"
        )
        return _task_failed(task, req, error)
    task.on_success(retval, req.id, req.args, req.kwargs)
    signals.task_success.send(sender=task, result=retval)
    return {"state": states.SUCCESS, "result": result, "keep_result": True, "repr": _short(retval)}


def _retried(task: Task, req: request_context.Request, retry: Retry) -> dict[str, Any]:
    exc = retry.exc if retry.exc is not None else retry
    einfo = ExceptionInfo(exc)
    task.on_retry(exc, req.id, req.args, req.kwargs, einfo)
    signals.task_retry.send(sender=task, request=req, reason=retry, einfo=einfo)
    outcome: dict[str, Any] = {
        "state": states.RETRY,
        "result": dumps(exception_to_dict(exc)),
        "keep_result": True,
        "traceback": safe_text(einfo.traceback) if retry.exc is not None else None,
        "repr": safe_text(str(retry)),
        "_einfo": einfo,
    }
    if retry.args_json is not None:
        outcome["args"], outcome["kwargs"] = retry.args_json, retry.kwargs_json
    when = retry.when
    if isinstance(when, (dt.date, dt.time)):  # (a datetime: anything with an isoformat)
        outcome["eta"] = when.isoformat()
    else:
        outcome["countdown"] = float(when or 0)
    return outcome


def _rejected(task: Task, req: request_context.Request, reject: Reject) -> dict[str, Any]:
    if reject.requeue:
        return {
            "state": states.PENDING,
            "result": None,
            "keep_result": False,
            "countdown": 0,
            "repr": f"rejected and requeued: {reject.reason!r}",
            "rejected": True,
        }
    return {**_task_failed(task, req, reject), "rejected": True}  # (task-rejected: djq.events)


def _task_failed(task: Task, req: request_context.Request, exc: BaseException) -> dict[str, Any]:
    einfo = ExceptionInfo(exc)
    try:
        task.on_failure(exc, req.id, req.args, req.kwargs, einfo)
    finally:
        signals.task_failure.send(
            sender=task,
            task_id=req.id,
            exception=exc,
            args=req.args,
            kwargs=req.kwargs,
            traceback=einfo.tb,
            einfo=einfo,
        )
    expected = isinstance(exc, tuple(getattr(task, "throws", ()) or ()))
    return {**_failed(exc, einfo), "_einfo": einfo, **({"expected": True} if expected else {})}


def _failed(exc: BaseException, einfo: ExceptionInfo) -> dict[str, Any]:
    return {
        "state": states.FAILURE,
        "result": dumps(exception_to_dict(exc)),
        "keep_result": True,
        "traceback": safe_text(einfo.traceback),
        "repr": repr(exc),
    }


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- soft time limits -----------------------------------------------------------------------
@contextmanager
def soft_limit(seconds: float | None) -> Iterator[None]:
    """Raise ``SoftTimeLimitExceeded`` in the running task after ``seconds``.

    In a process's main thread (prefork child, solo) a SIGALRM timer interrupts even blocking
    calls; in a pool thread, the exception is set asynchronously on that thread.
    """
    if not seconds:
        yield
        return
    if threading.current_thread() is threading.main_thread():
        with _alarm(seconds):
            yield
    else:
        with _async_raise_after(seconds):
            yield


def _raise_soft(signum: int, frame: FrameType | None) -> None:
    raise SoftTimeLimitExceeded()


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _raise_soft)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def _async_raise_after(seconds: float) -> Iterator[None]:
    thread_id = threading.get_ident()
    done = threading.Event()

    def fire() -> None:
        if not done.wait(seconds):
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(thread_id), ctypes.py_object(SoftTimeLimitExceeded)
            )

    timer = threading.Thread(target=fire, daemon=True, name="djq-soft-limit")
    timer.start()
    try:
        yield
    finally:
        done.set()


def report_lost(job: Claim, outcome: Outcome) -> None:
    """A job whose process died or was killed (hard time limit, crash) never reached its own
    failure hooks: run ``on_failure`` and ``task_failure`` in the worker, as Celery does."""
    if outcome.state != states.FAILURE or job.name not in tasks:
        return

    task = tasks[job.name]
    exc = dict_to_exception(loads(outcome.result))
    args, kwargs = loads(job.args), loads(job.kwargs)
    einfo = ExceptionInfo(exc)
    try:
        task.on_failure(exc, job.id, args, kwargs, einfo)
    except Exception:
        logging.getLogger("djq.worker").exception("on_failure of %s failed", task.name)
    signals.task_failure.send(
        sender=task,
        task_id=job.id,
        exception=exc,
        args=args,
        kwargs=kwargs,
        traceback=None,
        einfo=einfo,
    )
