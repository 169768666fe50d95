"""The control room's controls on a queue's, a worker's and the task limits' pages: pause and
resume, concurrency limits, pool size, autoscale, consumers, rate and time limits.

Each is a POST (CSRF-checked, the change permission required) that calls the function of
``djq.control`` the API and ``djq_control`` use, is written to the admin log, and says what it
did. Bad values are refused with a message naming the task or queue, the option and the value.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from djq import control, store
from djq.adminsite import monitor
from djq.calling.registry import tasks
from djq.conf import settings
from djq.limits import effective_limits, parse_rate
from djq.models import Job, Queue, TaskLimit, Worker


def whole(value: str, what: str, minimum: int = 1, blank_ok: bool = False) -> int | None:
    """``value`` as an int >= ``minimum`` (None for blank when ``blank_ok``); ValueError naming
    ``what`` and the value otherwise."""
    value = (value or "").strip()
    if not value and blank_ok:
        return None
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        blank = " (or empty for none)" if blank_ok else ""
        raise ValueError(f"{what} must be a whole number >= {minimum}{blank}, got {value!r}")
    return number


def seconds(value: str, what: str) -> float | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number <= 0:
        raise ValueError(f"{what} must be a number of seconds > 0 (or empty), got {value!r}")
    return number


def _replies(answers) -> str:
    """What the workers answered (``[{name: {"ok": ...}}]``), or that none did."""
    if not answers:
        return "no worker answered within 2 s (it applies the command when it next polls)"
    parts = []
    for answer in answers:
        for name, reply in answer.items():
            text = reply.get("ok") or reply.get("error") if isinstance(reply, dict) else reply
            parts.append(f"{name}: {text}")
    return "; ".join(parts)


class ControlsMixin:
    """``<object>/do/<action>/``: the page's buttons and forms, handled by ``handle_<action>``."""

    url_name = ""

    def get_urls(self):
        view = self.admin_site.admin_view(self.object_action)
        return [
            path("<path:object_id>/do/<str:action>/", view, name=self.url_name),
            *super().get_urls(),
        ]

    def object_action(self, request, object_id: str, action: str):
        back = reverse(f"admin:djq_{self.opts.model_name}_change", args=[object_id])
        if request.method != "POST":
            return HttpResponseRedirect(back)
        handler = getattr(self, f"handle_{action}", None)
        if handler is None or not self.may_act(request):
            raise PermissionDenied
        obj = get_object_or_404(self.model, pk=unquote(object_id))
        try:
            note = handler(request, obj)
        except ValueError as exc:
            self.message_user(request, f"{obj}: {exc}", messages.ERROR)
        else:
            self.log_change(request, obj, note)
            self.message_user(request, f"{obj}: {note}.", messages.SUCCESS)
        return HttpResponseRedirect(back)


class QueueControls(ControlsMixin):
    url_name = "djq_queue_action"
    change_form_template = "admin/djq/queue/change_form.html"

    def handle_pause(self, request, queue: Queue) -> str:
        control.pause_queue(queue.name)
        return "paused: its jobs wait until resumed (running jobs finish)"

    def handle_resume(self, request, queue: Queue) -> str:
        control.resume_queue(queue.name)
        return "resumed"

    def handle_limit(self, request, queue: Queue) -> str:
        limit = whole(request.POST.get("concurrency_limit"), "the concurrency limit", blank_ok=True)
        control.queue_concurrency_limit(queue.name, limit)
        return f"at most {limit} running job(s) at once" if limit else "no concurrency limit"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        queue = self.get_object(request, unquote(object_id))
        if queue is not None:
            now = store.db_now()
            jobs = Job.objects.filter(queue=queue.name).only(
                "id", "name", "state", "custom_state", "created_at", "worker"
            )
            extra_context = {
                **(extra_context or {}),
                "queue": queue,
                "may_act": self.may_act(request),
                "stats": monitor.queue_stats(now).get(queue.name, monitor.QueueStats()),
                "unconsumed": monitor.unconsumed_queues(now).get(queue.name),
                "waiting_jobs": jobs.filter(state__in=["PENDING", "RETRY"]).order_by("-created_at")[
                    :25
                ],
                "running_jobs": jobs.filter(state="STARTED")[:25],
                "show_save": False,
                "show_save_and_continue": False,
                "show_save_and_add_another": False,
            }
        return super().change_view(request, object_id, form_url, extra_context)


class WorkerControls(ControlsMixin):
    url_name = "djq_worker_action"
    change_form_template = "admin/djq/worker/change_form.html"

    def _send(self, command, worker: Worker, **arguments) -> str:
        answers = command(destination=[worker.name], reply=True, timeout=2.0, **arguments)
        return _replies(answers)

    def handle_grow(self, request, worker: Worker) -> str:
        n = whole(request.POST.get("n", "1"), "the number of processes to add")
        return f"pool grow by {n}: " + self._send(control.pool_grow, worker, n=n)

    def handle_shrink(self, request, worker: Worker) -> str:
        n = whole(request.POST.get("n", "1"), "the number of processes to remove")
        return f"pool shrink by {n}: " + self._send(control.pool_shrink, worker, n=n)

    def handle_autoscale(self, request, worker: Worker) -> str:
        most = whole(request.POST.get("max"), "autoscale max")
        least = whole(request.POST.get("min"), "autoscale min", minimum=0)
        if least > most:
            raise ValueError(f"autoscale min ({least}) must not exceed max ({most})")
        return f"autoscale {most},{least}: " + self._send(
            control.autoscale, worker, max=most, min=least
        )

    def handle_add_consumer(self, request, worker: Worker) -> str:
        queue = (request.POST.get("queue") or "").strip()
        if not queue or len(queue) > 200:
            raise ValueError(f"a queue name (1 to 200 characters) is needed, got {queue!r}")
        return f"add consumer {queue}: " + self._send(control.add_consumer, worker, queue=queue)

    def handle_cancel_consumer(self, request, worker: Worker) -> str:
        queue = (request.POST.get("queue") or "").strip()
        if queue not in (worker.queues or []):
            raise ValueError(f"it does not consume queue {queue!r}")
        return f"cancel consumer {queue}: " + self._send(
            control.cancel_consumer, worker, queue=queue
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "may_act": self.may_act(request),
            "action_url": lambda a: reverse("admin:djq_worker_action", args=[object_id, a]),
        }
        return super().change_view(request, object_id, form_url, extra_context)


def task_limit_rows() -> list[dict]:
    """Every registered task with its limits: its own, and the effective ones (database rows
    and DJQ_TASK_ANNOTATIONS included)."""
    rows = TaskLimit.objects.values_list("name", "rate_limit", "concurrency_limit")
    stored = {name: (rate, most) for name, rate, most in rows}
    effective = effective_limits(tasks, settings.TASK_ANNOTATIONS or {}, rows)
    listed = []
    for name in tasks.regular():
        task = tasks[name]
        rate, most = stored.get(name, ("", None))
        per_second, running = effective.get(name, (None, None))
        if name in stored and rate != "":
            rate = "" if rate == "0" else rate  # "0": set to "no limit"
        else:
            rate = getattr(task, "rate_limit", None) or ""
        if most is None:
            most = getattr(task, "concurrency_limit", None)
        listed.append(
            {
                "name": name,
                "quoted": quote(name),
                "rate": rate,
                "own_rate": getattr(task, "rate_limit", None) or "",
                "concurrency": most if most is not None else "",
                "own_concurrency": getattr(task, "concurrency_limit", None) or "",
                "per_second": per_second,
                "running": running,
                "time_limit": getattr(task, "time_limit", None) or "",
                "soft_time_limit": getattr(task, "soft_time_limit", None) or "",
            },
        )
    return listed


def task_limits_view(model_admin, request):
    """``admin/djq/job/limits/``: rate, concurrency and time limits per task."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    if request.method == "POST":
        if not model_admin.may_act(request):
            raise PermissionDenied
        apply_task_limits(model_admin, request)
        return HttpResponseRedirect(request.get_full_path())
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": "Task limits",
        "rows": task_limit_rows(),
        "may_act": model_admin.may_act(request),
    }
    return TemplateResponse(request, "admin/djq/job/task_limits.html", context)


def apply_task_limits(model_admin, request) -> None:
    """One task's form: the rate and concurrency limits are stored (every worker, also ones
    started later); time limits go to the running workers."""
    name = request.POST.get("task", "")
    if name not in tasks:
        model_admin.message_user(request, f"No task named {name!r} is registered.", messages.ERROR)
        return
    try:
        rate = (request.POST.get("rate_limit") or "").strip()
        parse_rate(rate or None)
        most = whole(
            request.POST.get("concurrency_limit"), f"{name}: the concurrency limit", blank_ok=True
        )
        soft = seconds(request.POST.get("soft_time_limit"), f"{name}: the soft time limit")
        hard = seconds(request.POST.get("time_limit"), f"{name}: the time limit")
    except ValueError as exc:
        text = str(exc) if str(exc).startswith(name) else f"{name}: {exc}"
        model_admin.message_user(request, text, messages.ERROR)
        return
    control.rate_limit(name, rate or None)
    control.concurrency_limit(name, most)
    done = [f"rate limit {rate or 'none'}", f"concurrency limit {most or 'none'}"]
    if soft is not None or hard is not None:
        control.time_limit(name, soft=soft, hard=hard)
        done.append(f"time limits soft {soft or '—'} s, hard {hard or '—'} s (running workers)")
    row = TaskLimit.objects.get(name=name)
    model_admin.log_change(request, row, "; ".join(done))
    model_admin.message_user(request, f"{name}: " + "; ".join(done) + ".", messages.SUCCESS)
