"""What happens after a job is recorded: links, the next step of a chain, chord bodies.

Called by ``djq.store`` inside the transaction that records finished jobs, so a continuation is
enqueued exactly when (and only if) its job's outcome is committed. The worker loop does not know
work-flows exist.
"""

from __future__ import annotations

import logging
from collections import Counter

from . import states
from .enqueue import callbacks
from .exceptions import ChordError
from .serialization import exception_to_dict, loads

logger = logging.getLogger("djq.continuation")


def may_continue(options_json: str | None) -> bool:
    """Whether a job with these (JSON) options can have a continuation: a cheap test so that
    batches without any are recorded in a single autocommitted statement."""
    return bool(options_json) and any(
        key in options_json for key in ('"link', '"chain"', '"chord"')
    )


def after_complete(finished: list[dict], using: str | None = None) -> None:
    """Enqueue the continuations of just-recorded jobs (rows from ``store.complete``)."""
    plain: list[dict] = []
    chord_counts: Counter = Counter()
    for job in finished:
        state = job["state"]
        if state not in states.READY_STATES:
            continue
        options = loads(job["options"]) or {}
        if state == states.SUCCESS:
            _on_success(job, options, plain, using)
        elif state in (states.FAILURE, states.REVOKED):
            _on_failure(job, options, plain, using)
        if options.get("chord") and job["group_id"]:
            chord_counts[job["group_id"]] += 1
    if chord_counts:
        from . import store

        for chord in store.count_chord_members(chord_counts, using=using):
            _fire_chord(chord, plain, using)
    if plain:
        from .enqueue import enqueue

        enqueue(plain, using=using)


def _on_success(job: dict, options: dict, plain: list, using) -> None:
    result = loads(job["result"])
    for link in callbacks(options.get("link")):
        _follow(link, (result,), {}, job, plain, using)
    chain = options.get("chain")
    if chain:
        rest = chain[:-1]
        _follow(chain[-1], (result,), {"chain": rest} if rest else {}, job, plain, using)


def _on_failure(job: dict, options: dict, plain: list, using) -> None:
    for errback in callbacks(options.get("link_error")):
        _follow(errback, (job["id"],), {}, job, plain, using)
    if options.get("chain"):
        from .canvas import maybe_signature

        for step in options["chain"]:
            errbacks = callbacks(maybe_signature(step).options.get("link_error"))
            for errback in errbacks:
                _follow(errback, (job["id"],), {}, job, plain, using)


def _follow(sig_data, args: tuple, extra: dict, job: dict, plain: list, using) -> None:
    """Queue one continuation; a broken one is logged and dropped, never blocking the batch."""
    from .canvas import maybe_signature
    from .enqueue import build_row

    try:
        sig = maybe_signature(sig_data)
        new_args, kwargs, options = sig._merge(args, None, extra)
        options["parent_id"] = job["id"]
        options["root_id"] = job.get("root_id") or job["id"]
        if sig.subtask_type:
            sig.clone().apply_async(args, **{**extra, "using": using,
                                            "parent_id": job["id"]})  # fmt: skip
            return
        plain.append(build_row(sig.task, new_args, kwargs, options))
    except Exception:
        logger.exception("Could not enqueue the continuation %r of job %s", sig_data, job["id"])


def _fire_chord(chord: dict, plain: list, using) -> None:
    """All header jobs finished: the body gets their results in order, or fails if one did."""
    from .canvas import maybe_signature
    from .enqueue import build_row
    from .models import Job

    members = {
        str(row["id"]): row
        for row in Job.objects.using(using)
        .filter(group_id=chord["id"])
        .values("id", "name", "state", "result")
    }
    ordered = [members.get(str(child)) for child in chord["children"]]
    body = maybe_signature(chord["body"])
    failed = next((m for m in ordered if m is None or m["state"] != states.SUCCESS), None)
    if failed is None:
        results = [m["result"] for m in ordered]
        new_args, kwargs, options = body._merge((results,), None, {"parent_id": None})
        plain.append(build_row(body.task, new_args, kwargs, options))
        return
    _fail_chord_body(chord, body, failed, plain, using)


def _fail_chord_body(chord: dict, body, failed: dict | None, plain: list, using) -> None:
    from . import store
    from .enqueue import build_row, enqueue

    who = f"{failed['name']}[{failed['id']}] ended {failed['state']}" if failed else "missing"
    error = ChordError(f"Dependency {who}")
    args, kwargs, options = body._merge((), None, {})
    # the body never runs, so its arguments are not checked against its signature
    row = build_row(body.task, args, kwargs, {**options, "link": None}, check=False)
    enqueue([row], using=using)
    store.fail_jobs([{"id": row["id"], "result": exception_to_dict(error)}], using=using)
    for errback in callbacks(body.options.get("link_error")):
        _follow(errback, (row["id"],), {}, {"id": row["id"]}, plain, using)
    logger.info("Chord %s failed: %s", chord["id"], error)
