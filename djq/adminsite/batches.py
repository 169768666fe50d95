"""The admin's batches (``djq.batch``): a list with each batch's progress, and a page with its
members and callbacks. Read-only: batches are made and closed through the API."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from djq.adminsite.support import state_badge, when
from djq.models import Batch, Job

#: members listed on a batch's page (the progress counts them all)
MEMBERS_SHOWN = 200


def _job_link(job_id: str, label: str) -> str:
    url = reverse("admin:djq_job_change", args=[quote(job_id)])
    return format_html('<a href="{}">{}</a>', url, label)


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ("batch_id", "status", "progress", "failed", "created", "finished")
    list_display_links = ("batch_id",)
    search_fields = ("id",)
    fields = readonly_fields = (
        "batch_id",
        "status",
        "progress",
        "failed",
        "callbacks",
        "members",
        "created",
        "closed",
        "finished",
    )

    class Media:
        css = {"all": ["djq/admin.css"]}

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="batch", ordering="id")
    def batch_id(self, obj: Batch) -> str:
        return format_html('<code class="djq-id">{}</code>', obj.id)

    @admin.display(description="status")
    def status(self, obj: Batch) -> str:
        if obj.finished_at:
            return "finished"
        return "running" if obj.closed_at else "open (takes members)"

    @admin.display(description="progress (ended/total)")
    def progress(self, obj: Batch) -> str:
        return format_html(
            '<progress class="djq-batch-progress" max="{}" value="{}"></progress> {}/{}',
            max(obj.size, 1),
            obj.ended,
            obj.ended,
            obj.size,
        )

    @admin.display(description="failed", ordering="failed")
    def failed(self, obj: Batch) -> int:
        return obj.failed

    @admin.display(description="created", ordering="created_at")
    def created(self, obj: Batch) -> str:
        return when(obj.created_at)

    @admin.display(description="closed")
    def closed(self, obj: Batch) -> str:
        return when(obj.closed_at)

    @admin.display(description="finished", ordering="finished_at")
    def finished(self, obj: Batch) -> str:
        return when(obj.finished_at)

    @admin.display(description="callbacks")
    def callbacks(self, obj: Batch) -> str:
        ids = obj.callback_ids or {}
        found = dict(Job.objects.filter(id__in=list(ids.values())).values_list("id", "state"))
        rows = [
            (name, (getattr(obj, name) or {}).get("task", "?"), job_id, found.get(job_id))
            for name, job_id in ids.items()
        ]
        return (
            format_html_join(
                "",
                "<div>{}: {} {}</div>",
                (
                    (name, _job_link(job_id, task) if state else task, state_badge(state or "—"))
                    for name, task, job_id, state in rows
                ),
            )
            or "—"
        )

    @admin.display(description="members")
    def members(self, obj: Batch) -> str:
        shown = [str(c) for c in (obj.children or [])[:MEMBERS_SHOWN]]
        jobs = {
            str(j["id"]): j for j in Job.objects.filter(id__in=shown).values("id", "name", "state")
        }
        items = format_html_join(
            "",
            "<li>{} {}</li>",
            (
                (_job_link(c, jobs[c]["name"]), state_badge(jobs[c]["state"]))
                if c in jobs
                else (format_html("<code>{}</code>", c), "(no longer stored)")
                for c in shown
            ),
        )
        more = len(obj.children or []) - len(shown)
        tail = format_html("<li>… and {} more</li>", more) if more > 0 else ""
        return format_html('<ol class="djq-batch-members">{}{}</ol>', items, tail)
