"""Work-flows: signatures, chain, group, chord, chunks, map/starmap.

A signature is a JSON-serialisable dict (task name, args, kwargs, options), so it can be stored in
a job's options and passed as a task argument. Work-flows are coordinated in the database: a
chain's remaining steps and a chord's body travel in the job's options and are enqueued by
``djq.continuation`` in the same transaction that records the finished job.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from djq import options as checks
from djq import store
from djq.calling.enqueue import enqueue_many, send_task
from djq.calling.registry import tasks
from djq.calling.result import AsyncResult, GroupResult
from djq.conf import settings


class Signature(dict):
    """A task call waiting to happen: ``add.s(2, 2)``, ``signature("app.add", args=(2, 2))``."""

    def __init__(
        self,
        task: Any = None,
        args=None,
        kwargs=None,
        options=None,
        subtask_type: str | None = None,
        immutable: bool = False,
        **extra,
    ):
        if isinstance(task, dict):
            src = task
            super().__init__(
                task=src["task"],
                args=list(src.get("args") or ()),
                kwargs=dict(src.get("kwargs") or {}),
                options=dict(src.get("options") or {}),
                subtask_type=src.get("subtask_type"),
                immutable=bool(src.get("immutable", False)),
            )
            return
        name = task if isinstance(task, str) else getattr(task, "name", None)
        if not name:
            raise TypeError(f"a signature needs a task or task name, got {task!r}")
        checks.task_name(name, call="signature")
        options = dict(options or {})
        immutable = bool(options.pop("immutable", immutable))
        options.update(extra)
        checks.check(name, options)  # a bad option fails here, not when the step is enqueued
        super().__init__(
            task=name,
            args=list(args or ()),
            kwargs=dict(kwargs or {}),
            options=options,
            subtask_type=subtask_type,
            immutable=immutable,
        )

    # --- fields ---------------------------------------------------------------------------
    task = property(lambda self: self["task"])
    name = task
    args = property(lambda self: tuple(self["args"]))
    kwargs = property(lambda self: self["kwargs"])
    options = property(lambda self: self["options"])
    immutable = property(lambda self: self["immutable"])
    subtask_type = property(lambda self: self.get("subtask_type"))

    @property
    def id(self) -> str | None:
        return self["options"].get("task_id")

    @property
    def type(self):
        return tasks[self.task]

    def __repr__(self) -> str:
        args = ", ".join(
            [repr(a) for a in self["args"]] + [f"{k}={v!r}" for k, v in self["kwargs"].items()]
        )
        return f"{self.task}({args}){'!' if self.immutable else ''}"

    # --- partial application --------------------------------------------------------------
    def _merge(self, args=None, kwargs=None, options=None) -> tuple[tuple, dict, dict]:
        """Partial application: new args prepended, kwargs and options merged (new keys win)."""
        options = {**self["options"], **(options or {})}
        if self.immutable:
            return tuple(self["args"]), dict(self["kwargs"]), options
        return (
            tuple(args or ()) + tuple(self["args"]),
            {**self["kwargs"], **(kwargs or {})},
            options,
        )

    def clone(self, args=None, kwargs=None, **options) -> Signature:
        args, kwargs, options = self._merge(args, kwargs, options)
        return type(self).from_dict(
            {**self, "args": list(args), "kwargs": kwargs, "options": options}
        )

    @classmethod
    def from_dict(cls, data: dict) -> Signature:
        kind = data.get("subtask_type")
        target = _TYPES.get(kind, Signature)
        if target is Signature:
            return Signature(data)
        workflow = target._from_dict(data)
        workflow["args"] = list(data.get("args") or ())
        workflow["immutable"] = bool(data.get("immutable", False))
        return workflow

    def set(self, immutable: bool | None = None, **options) -> Signature:
        if immutable is not None:
            self["immutable"] = immutable
        self["options"].update(options)
        return self

    def set_immutable(self, immutable: bool) -> None:
        self["immutable"] = immutable

    def link(self, callback) -> Any:
        self["options"].setdefault("link", []).append(maybe_signature(callback))
        return callback

    def link_error(self, errback) -> Any:
        self["options"].setdefault("link_error", []).append(maybe_signature(errback))
        return errback

    def freeze(self, _id: str | None = None, group_id=None, **kwargs):
        task_id = self["options"].get("task_id") or _id or str(uuid.uuid4())
        self["options"]["task_id"] = task_id
        if group_id is not None:
            self["options"]["group_id"] = group_id
        return AsyncResult(task_id, task_name=self.task)

    # --- calling ---------------------------------------------------------------------------
    def apply_async(self, args=None, kwargs=None, **options):
        args, kwargs, options = self._merge(args, kwargs, options)
        if self.task in tasks:
            return tasks[self.task].apply_async(args, kwargs, **options)

        return send_task(self.task, args, kwargs, **options)

    def delay(self, *args, **kwargs):
        return self.apply_async(args, kwargs)

    def apply(self, args=None, kwargs=None, **options):
        args, kwargs, options = self._merge(args, kwargs, options)
        return tasks[self.task].apply(args, kwargs, **options)

    def __call__(self, *args, **kwargs):
        """Call the task inline with the signature's (partial) arguments."""
        args, kwargs, _ = self._merge(args, kwargs)
        return tasks[self.task](*args, **kwargs)

    def s(self, *args, **kwargs) -> Signature:
        return self.clone(args, kwargs)

    def si(self, *args, **kwargs) -> Signature:
        sig = self.clone(args, kwargs)
        sig["immutable"] = True
        return sig

    def __or__(self, other):
        if isinstance(other, group):
            other = maybe_unroll_group(other)
        if isinstance(self, chain):
            return chain(*self.tasks, other)
        if isinstance(other, chain):
            return chain(self, *other.tasks)
        if isinstance(other, Signature):
            return chain(self, other)
        return NotImplemented

    def __deepcopy__(self, memo):
        return self.from_dict(_deepcopy_dict(dict(self)))

    def __reduce__(self):
        return (Signature.from_dict, (dict(self),))


def _deepcopy_dict(data):
    import copy

    return copy.deepcopy(data)


def maybe_signature(value) -> Signature | None:
    if value is None or isinstance(value, Signature):
        return value
    if isinstance(value, dict):
        return Signature.from_dict(value)
    raise TypeError(f"expected a signature or a dict, got {type(value).__name__}")


def signature(varies, *args, **kwargs) -> Signature:
    """``signature("app.add", args=(2, 2), countdown=10)`` or a signature dict."""
    if isinstance(varies, dict):
        return Signature.from_dict(varies)
    return Signature(varies, *args, **kwargs)


subtask = signature


class _Workflow(Signature):
    """chain, group and chord keep their parts in ``kwargs``; partial arguments go to their
    first step (chain) or to every member (group, chord header), so they merge differently."""

    def _merge(self, args=None, kwargs=None, options=None) -> tuple[tuple, dict, dict]:
        options = {**self["options"], **(options or {})}
        if self.immutable:
            return tuple(self["args"]), {}, options
        return tuple(args or ()) + tuple(self["args"]), dict(kwargs or {}), options

    def clone(self, args=None, kwargs=None, **options) -> Signature:
        args, _, options = self._merge(args, None, options)
        return Signature.from_dict({**self, "args": list(args), "options": options})


def _steps(value) -> list[Signature]:
    """``chain(a, b)``, ``chain([a, b])`` or ``chain(a for …)``: the steps as signatures."""
    if len(value) == 1 and not isinstance(value[0], dict):
        value = tuple(value[0])
    return [maybe_signature(t) for t in value]


def _normalized(steps: list[Signature]) -> list[Signature]:
    """Flatten nested chains and turn ``group | next`` into ``chord(group, next)``, as Celery
    does: what remains is a list of plain signatures, chords and (last only) a group."""
    flat: list[Signature] = []
    for step in steps:
        if isinstance(step, chain):
            flat.extend(_normalized(step.tasks))
        else:
            flat.append(step.clone())
    out: list[Signature] = []
    for step in flat:
        if out and isinstance(out[-1], group):
            out[-1] = chord(out[-1].tasks, step, **out[-1]["options"])
        else:
            out.append(step)
    return out


def _freeze_all(steps: list[Signature]):
    """Give every step its ids now, so the chain's result exists before any step runs."""
    results = [step.freeze() for step in steps]
    for prev, res in zip(results, results[1:], strict=False):
        res.parent = prev
    return results[-1]


def _is_eager() -> bool:
    return bool(settings.TASK_ALWAYS_EAGER)


class _Steps(_Workflow):
    """A work-flow made of a list of steps (chain, group): ``kwargs = {"tasks": [...]}``."""

    kind = ""

    def __init__(self, *tasks_, **options):
        super().__init__(f"celery.{self.kind}", options=options, subtask_type=self.kind)
        self["kwargs"] = {"tasks": _steps(tasks_)}

    @classmethod
    def _from_dict(cls, data):
        return cls(*data["kwargs"]["tasks"], **data.get("options", {}))

    @property
    def tasks(self) -> list[Signature]:
        return [maybe_signature(t) for t in self["kwargs"]["tasks"]]


class chain(_Steps):  # noqa: N801 - Celery's name
    """Run tasks one after another, each result feeding the next.

    The steps after the first travel in the running job's options (``chain``, next step first)
    and are enqueued by the completion that records each step's success.
    """

    kind = "chain"

    def __repr__(self) -> str:
        return " | ".join(repr(t) for t in self.tasks) or "chain()"

    def freeze(self, _id=None, group_id=None, **kwargs):
        steps = _normalized(self.tasks)
        self["kwargs"]["tasks"] = steps
        return _freeze_all(steps)

    def apply_async(self, args=None, kwargs=None, **options):
        if not self.tasks:
            raise ValueError("an empty chain cannot be applied")
        args, kwargs, options = self._merge(args, kwargs, options)
        if _is_eager():
            return self.apply(args, kwargs)
        steps = _normalized(self.tasks)
        result = _freeze_all(steps)
        first, rest = steps[0], steps[1:]
        chain_rest = [dict(s) for s in rest] + list(options.pop("chain", None) or [])
        if chain_rest:
            options["chain"] = chain_rest
        first.apply_async(args, kwargs, **options)
        return result

    def apply(self, args=None, kwargs=None, **options):
        result = None
        for i, step in enumerate(_normalized(self.tasks)):
            if i == 0:
                result = step.apply(args, kwargs, **options)
            else:
                result = step.apply((result.get(),))
        return result

    def __call__(self, *args, **kwargs):
        return self.apply_async(args, kwargs)


class group(_Steps):  # noqa: N801
    """Run tasks in parallel (one bulk insert); ``get()`` returns their results in order."""

    kind = "group"

    def __repr__(self) -> str:
        return f"group([{', '.join(repr(t) for t in self.tasks)}])"

    def __or__(self, other):
        if isinstance(other, Signature) and not isinstance(other, (group, chain)):
            return chord(self.tasks, other)
        return super().__or__(other)

    def freeze(self, _id=None, group_id=None, **kwargs):
        group_id = self["options"].get("group_id") or _id or group_id or str(uuid.uuid4())
        self["options"]["group_id"] = group_id
        members = self.tasks
        results = [m.freeze() for m in members]
        self["kwargs"]["tasks"] = members
        return GroupResult(group_id, results)

    def _prepared(self, args, kwargs, group_id, extra=None) -> list[tuple[Signature, Any]]:
        """Members with the partial arguments applied, tagged with the group (on the step whose
        result is the member's result), and frozen: [(signature, its result), …]."""
        prepared = []
        for index, step in enumerate(self.tasks):
            sig = _tag_final(
                step.clone(args, kwargs), group_id=group_id, group_index=index, **(extra or {})
            )
            prepared.append((sig, sig.freeze()))
        return prepared

    def apply_async(self, args=None, kwargs=None, **options):
        args, kwargs, options = self._merge(args, kwargs, options)
        if _is_eager():
            return self.apply(args, kwargs)
        using = options.pop("using", None)
        options.pop("chain", None)  # a group is always a chain's last step (see _normalized)
        group_id = options.pop("group_id", None) or options.pop("task_id", None)
        group_id = group_id or str(uuid.uuid4())
        prepared = self._prepared(args, kwargs, group_id, options)
        results = _apply_members(prepared, using)
        return GroupResult(group_id, results, using=using)

    def apply(self, args=None, kwargs=None, **options):
        group_id = self["options"].get("group_id") or str(uuid.uuid4())
        return GroupResult(group_id, [s.apply(args, kwargs) for s in self.tasks])

    def __call__(self, *args, **kwargs):
        return self.apply_async(args, kwargs)

    def __iter__(self):
        return iter(self.tasks)

    def __len__(self):
        return len(self["kwargs"]["tasks"])


def maybe_unroll_group(g: group):
    tasks_ = g.tasks
    return tasks_[0] if len(tasks_) == 1 else g


class chord(_Workflow):  # noqa: N801
    """A group (the header) whose results, in order, go to one callback (the body) once all
    header jobs have finished. The completion transaction that finishes the last header job
    enqueues the body, so it runs exactly once."""

    def __init__(self, header, body=None, **options):
        if isinstance(header, dict) and header.get("subtask_type") == "chord":
            data = header
            header, body = data["kwargs"]["header"], data["kwargs"]["body"]
            options = {**data.get("options", {}), **options}
        members = header.tasks if isinstance(header, group) else header
        super().__init__("celery.chord", options=options, subtask_type="chord")
        self["kwargs"] = {
            "header": [maybe_signature(t) for t in members],
            "body": maybe_signature(body),
        }

    @classmethod
    def _from_dict(cls, data):
        return cls(data)

    @property
    def tasks(self) -> list[Signature]:
        return [maybe_signature(t) for t in self["kwargs"]["header"]]

    @property
    def body(self) -> Signature | None:
        return maybe_signature(self["kwargs"]["body"])

    def __repr__(self) -> str:
        return f"chord([{', '.join(repr(t) for t in self.tasks)}], {self.body!r})"

    def freeze(self, _id=None, group_id=None, **kwargs):
        """Freeze the header's group and the body; the chord's result is the body's."""
        group_id = self["options"].get("group_id") or group_id or str(uuid.uuid4())
        self["options"]["group_id"] = group_id
        header = self.tasks
        header_results = [m.freeze() for m in header]
        body = self.body
        body_result = body.freeze() if body is not None else None
        self["kwargs"].update(header=header, body=body)
        if body_result is not None:
            body_result.parent = GroupResult(group_id, header_results)
        return body_result

    def apply_async(self, args=None, kwargs=None, body=None, **options):
        if body is not None:
            self["kwargs"]["body"] = maybe_signature(body)
        if self.body is None:
            raise ValueError("a chord needs a body")
        args, kwargs, options = self._merge(args, kwargs, options)
        if _is_eager():
            return self.apply(args, kwargs)
        using = options.pop("using", None)
        rest = list(options.pop("chain", None) or [])
        body_result = self.freeze()
        group_id = self["options"]["group_id"]
        body = _with_chain(self.body, rest)
        lineage = {k: options[k] for k in ("parent_id", "root_id") if options.get(k)}
        header = group(self.tasks)._prepared(args, kwargs, group_id, {"chord": True, **lineage})
        if not header:
            body.apply_async(([],), using=using)
            return body_result
        with transaction.atomic(using=store.alias(using)):
            store.create_chord(group_id, [r.id for _, r in header], dict(body), using=using)
            results = _apply_members(header, using)
        body_result.parent = GroupResult(group_id, results, using=using)
        return body_result

    def apply(self, args=None, kwargs=None, **options):
        header = group(self.tasks).apply(args, kwargs)
        return self.body.apply((header.get(),))

    def __call__(self, body=None, *args, **kwargs):
        return self.apply_async(args, kwargs, body=body)


def _tag_final(sig: Signature, **options) -> Signature:
    """Set options on the step whose result is ``sig``'s result (a chain's last step, a chord's
    body): group membership and chord counting belong there, not on the first step."""
    if isinstance(sig, chain):
        steps = _normalized(sig.tasks)
        steps[-1] = _tag_final(steps[-1], **options)
        return chain(*steps, **sig["options"])
    if isinstance(sig, chord):
        return chord(sig.tasks, _tag_final(sig.body, **options), **sig["options"])
    return sig.set(**options)


def _apply_members(prepared: list[tuple[Signature, Any]], using) -> list:
    """Enqueue a group's members: plain ones in one bulk insert, work-flows one by one."""
    plain = [sig for sig, _ in prepared if not sig.subtask_type]
    with transaction.atomic(using=_alias(using)):
        enqueue_many(plain, using=using)
        for sig, _ in prepared:
            if sig.subtask_type:
                sig.apply_async(using=using)
    return [result for _, result in prepared]


def _alias(using):
    return store.alias(using)


def _with_chain(sig: Signature, rest: list) -> Signature:
    """``sig`` followed by the chain steps ``rest`` (dicts): as a chain's remaining steps travel."""
    if not rest:
        return sig
    if isinstance(sig, chain):
        steps = [*sig.tasks, *(maybe_signature(r) for r in rest)]
        return chain(*steps)
    if isinstance(sig, chord):
        return chord(sig.tasks, _with_chain(sig.body, rest), **sig["options"])
    sig = sig.clone()
    sig["options"]["chain"] = list(sig["options"].get("chain") or []) + list(rest)
    return sig


def final_steps(sig_data) -> list[Signature]:
    """The plain signatures whose results a step would produce (a chain's last, a chord's body
    …): what a failure that stops a work-flow marks as not run, so that ``get()`` on its result
    raises instead of waiting forever."""
    sig = maybe_signature(sig_data)
    if isinstance(sig, chord):
        body = sig.body
        return final_steps(body) if body is not None else []
    if isinstance(sig, (group, chain)):
        return [step for member in sig.tasks for step in final_steps(member)]
    found = [sig] if sig.id else []
    for step in sig.options.get("chain") or ():
        found.extend(final_steps(step))
    return found


def final_ids(sig_data) -> list[tuple[str, str]]:
    """(id, task name) of ``final_steps``."""
    return [(step.id, step.task) for step in final_steps(sig_data)]


def chunks(sig: Signature, it: Iterable, n: int) -> _chunks:
    return _chunks(sig, it, n)


class _chunks(Signature):
    def __init__(self, sig, it, n):
        super().__init__("celery.chunks", subtask_type="chunks")
        self["kwargs"] = {"task": dict(sig), "it": [list(x) for x in it], "n": int(n)}

    @classmethod
    def _from_dict(cls, data):
        k = data["kwargs"]
        return cls(maybe_signature(k["task"]), k["it"], k["n"])

    def group(self) -> group:
        k = self["kwargs"]
        sig = maybe_signature(k["task"])
        items = iter(k["it"])
        parts = []
        while part := list(itertools.islice(items, k["n"])):
            parts.append(xstarmap(sig, part))
        return group(parts)

    def apply_async(self, args=None, kwargs=None, **options):
        return self.group().apply_async(args, kwargs, **options)

    def __call__(self, *args, **kwargs):
        return self.apply_async(args, kwargs)


def xmap(sig: Signature, it: Iterable) -> Signature:
    return Signature("djq.map", args=(dict(sig), list(it)), subtask_type=None)


def xstarmap(sig: Signature, it: Iterable) -> Signature:
    return Signature("djq.starmap", args=(dict(sig), [list(x) for x in it]), subtask_type=None)


_TYPES: dict[str, type[Signature]] = {
    "chain": chain,
    "group": group,
    "chord": chord,
    "chunks": _chunks,
}
