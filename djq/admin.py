"""The control room: jobs, queues and workers in the Django admin (read-only payloads)."""

from __future__ import annotations

from django.contrib import admin, messages

from . import control
from .models import Job, Queue, Worker


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("name", "state", "queue", "priority", "worker", "created_at", "retries")
    list_filter = ("state", "queue")
    search_fields = ("=id", "name")
    show_full_result_count = False
    readonly_fields = [f.name for f in Job._meta.fields]
    actions = ["revoke_jobs"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke selected jobs", permissions=["change"])
    def revoke_jobs(self, request, queryset):
        done = control.revoke([str(i) for i in queryset.values_list("id", flat=True)])
        self.message_user(request, f"Revoked {len(done)} job(s).", messages.SUCCESS)


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ("name", "paused", "concurrency_limit", "created_at")


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ("name", "hostname", "pid", "pool", "concurrency", "last_heartbeat",
                    "stopped_at", "processed", "failed")  # fmt: skip
    readonly_fields = [f.name for f in Worker._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
