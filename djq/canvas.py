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

from .registry import tasks


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
        options = dict(options or {})
        immutable = bool(options.pop("immutable", immutable))
        options.update(extra)
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
        return target._from_dict(data) if target is not Signature else Signature(data)

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
        from .result import AsyncResult

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
        from .task import send_task

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


class chain(Signature):  # noqa: N801 - Celery's name
    """Run tasks one after another, each result feeding the next."""

    def __init__(self, *tasks_, **options):
        if len(tasks_) == 1 and not isinstance(tasks_[0], dict):
            tasks_ = tuple(tasks_[0])
        steps = [maybe_signature(t) for t in tasks_]
        super().__init__("celery.chain", options=options, subtask_type="chain")
        self["kwargs"] = {"tasks": steps}

    @classmethod
    def _from_dict(cls, data):
        return cls(*data["kwargs"]["tasks"], **data.get("options", {}))

    @property
    def tasks(self) -> list[Signature]:
        return [maybe_signature(t) for t in self["kwargs"]["tasks"]]

    def __repr__(self) -> str:
        return " | ".join(repr(t) for t in self.tasks) or "chain()"

    def apply_async(self, args=None, kwargs=None, **options):
        steps = self.tasks
        if not steps:
            raise ValueError("an empty chain cannot be applied")
        options = {**self["options"], **options}
        first, rest = steps[0], steps[1:]
        if isinstance(first, (group, chord)) or any(isinstance(s, (group, chord)) for s in rest):
            return _apply_chain_stepwise(steps, args, kwargs, options)
        results = [s.freeze() for s in steps]
        for prev, res in zip(results, results[1:], strict=False):
            res.parent = prev
        if rest:
            options = {**options, "chain": [dict(s) for s in reversed(rest)]}
        first.apply_async(args, kwargs, **_first_options(options, first))
        return results[-1]

    def apply(self, args=None, kwargs=None, **options):
        result = None
        for i, step in enumerate(self.tasks):
            if i == 0:
                result = step.apply(args, kwargs, **options)
            else:
                result = step.apply((result.get(),) if not step.immutable else ())
        return result

    def __call__(self, *args, **kwargs):
        return self.apply_async(args, kwargs)


def _first_options(options: dict, first: Signature) -> dict:
    options = dict(options)
    options["task_id"] = first.id
    return options


def _apply_chain_stepwise(steps, args, kwargs, options):
    """Chains containing groups/chords: the group becomes a chord whose body is the rest."""
    head, rest = steps[0], steps[1:]
    if not rest:
        return head.apply_async(args, kwargs, **options)
    nxt = rest[0] if len(rest) == 1 else chain(*rest)
    if isinstance(head, group):
        return chord(head.tasks, nxt).apply_async(args, kwargs, **options)
    head = head.clone()
    head.link(nxt)
    res = head.apply_async(args, kwargs, **options)
    return res


class group(Signature):  # noqa: N801
    """Run tasks in parallel; ``get()`` returns their results in order."""

    def __init__(self, *tasks_, **options):
        if len(tasks_) == 1 and not isinstance(tasks_[0], dict):
            tasks_ = tuple(tasks_[0])
        steps = [maybe_signature(t) for t in tasks_]
        super().__init__("celery.group", options=options, subtask_type="group")
        self["kwargs"] = {"tasks": steps}

    @classmethod
    def _from_dict(cls, data):
        return cls(*data["kwargs"]["tasks"], **data.get("options", {}))

    @property
    def tasks(self) -> list[Signature]:
        return [maybe_signature(t) for t in self["kwargs"]["tasks"]]

    def __repr__(self) -> str:
        return f"group([{', '.join(repr(t) for t in self.tasks)}])"

    def __or__(self, other):
        if isinstance(other, Signature) and not isinstance(other, (group, chain)):
            return chord(self.tasks, other)
        return super().__or__(other)

    def _prepared(self, args, kwargs, options, group_id, extra=None) -> list[Signature]:
        sigs = []
        for index, step in enumerate(self.tasks):
            sig = step.clone(args, kwargs)
            sig.set(group_id=group_id, group_index=index, **(extra or {}))
            sig.freeze()
            sigs.append(sig)
        return sigs

    def apply_async(self, args=None, kwargs=None, **options):
        from .result import GroupResult
        from .task import enqueue_many

        options = {**self["options"], **options}
        using = options.pop("using", None)
        group_id = options.pop("group_id", None) or options.pop("task_id", None)
        group_id = group_id or str(uuid.uuid4())
        sigs = self._prepared(args, kwargs, options, group_id, options)
        results = enqueue_many(sigs, using=using)
        return GroupResult(group_id, results, using=using)

    def apply(self, args=None, kwargs=None, **options):
        from .result import GroupResult

        group_id = str(uuid.uuid4())
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


class chord(Signature):  # noqa: N801
    """A group (the header) whose results, in order, go to one callback (the body) once all
    header jobs have finished. The completion transaction that finishes the last header job
    enqueues the body, so it runs exactly once."""

    def __init__(self, header, body=None, **options):
        if isinstance(header, dict) and header.get("subtask_type") == "chord":
            data = header
            header, body = data["kwargs"]["header"], data["kwargs"]["body"]
            options = {**data.get("options", {}), **options}
        header_sigs = [maybe_signature(t) for t in (
            header.tasks if isinstance(header, group) else header
        )]  # fmt: skip
        super().__init__("celery.chord", options=options, subtask_type="chord")
        self["kwargs"] = {"header": header_sigs, "body": maybe_signature(body)}

    @classmethod
    def _from_dict(cls, data):
        return cls(data)

    @property
    def tasks(self) -> list[Signature]:
        return [maybe_signature(t) for t in self["kwargs"]["header"]]

    @property
    def body(self) -> Signature | None:
        return maybe_signature(self["kwargs"]["body"])

    def apply_async(self, args=None, kwargs=None, body=None, **options):
        from . import store
        from .result import AsyncResult, GroupResult
        from .task import enqueue_many

        body = maybe_signature(body) or self.body
        if body is None:
            raise ValueError("a chord needs a body")
        options = {**self["options"], **options}
        using = options.pop("using", None)
        group_id = options.pop("group_id", None) or str(uuid.uuid4())
        body = body.clone()
        body_result = body.freeze()
        header = group(self.tasks)._prepared(args, kwargs, options, group_id, {"chord": True})
        if not header:
            return body.apply_async(([],), using=using)
        with transaction.atomic(using=store.alias(using)):
            store.create_chord(group_id, [s.id for s in header], dict(body), using=using)
            results = enqueue_many(header, using=using)
        body_result = AsyncResult(body_result.id, task_name=body.task, using=using)
        body_result.parent = GroupResult(group_id, results)
        return body_result

    def apply(self, args=None, kwargs=None, **options):
        header = group(self.tasks).apply(args, kwargs)
        return self.body.apply((header.get(),))

    def __call__(self, body=None, *args, **kwargs):
        return self.apply_async(args, kwargs, body=body)


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


_TYPES: dict[str, type[Signature]] = {"chain": chain, "group": group, "chord": chord,
                                      "chunks": _chunks}  # fmt: skip
