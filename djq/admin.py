"""The control room: jobs, queues and workers in the Django admin (read-only payloads)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone as dj_timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from . import control
from .models import SCHEDULE_FIELDS, Job, PeriodicTask, Queue, Worker


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


# --- schedules (beat) -----------------------------------------------------------------------------
class TaskNameInput(forms.TextInput):
    """A text input that suggests the registered task names (any name is accepted)."""

    def render(self, name, value, attrs=None, renderer=None):
        from .registry import tasks

        attrs = {**(attrs or {}), "list": "djq-task-names", "size": 60}
        options = format_html_join("", '<option value="{}">', ((n,) for n in tasks.regular()))
        html = super().render(name, value, attrs, renderer)
        return format_html('{}<datalist id="djq-task-names">{}</datalist>', html, options)


def _zone_choices() -> list[tuple[str, str]]:
    from zoneinfo import available_timezones

    return [("", "default (DJQ_TIMEZONE / TIME_ZONE)")] + [
        (z, z) for z in sorted(available_timezones())
    ]


class PeriodicTaskForm(forms.ModelForm):
    """The three schedule kinds side by side; the model's ``clean`` says which is wrong."""

    timezone = forms.ChoiceField(choices=_zone_choices, required=False)

    class Meta:
        model = PeriodicTask
        fields = "__all__"
        widgets = {"task": TaskNameInput, "crontab": forms.TextInput(attrs={"size": 30})}

    def clean(self):
        cleaned = super().clean()
        keys = ("task", "args", "kwargs", *SCHEDULE_FIELDS[:5])
        if self.errors or any(k not in cleaned for k in keys):
            return cleaned
        same = PeriodicTask.objects.filter(**{k: cleaned[k] for k in keys if k not in (
            "args", "kwargs")}).exclude(pk=self.instance.pk)  # fmt: skip
        for other in same:
            if other.args == cleaned["args"] and other.kwargs == cleaned["kwargs"]:
                raise forms.ValidationError(
                    f"An identical schedule already exists: {other.name!r} runs the same task "
                    "with the same arguments on the same schedule."
                )
        return cleaned


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(admin.ModelAdmin):
    form = PeriodicTaskForm
    list_display = ("name", "task", "schedule_display", "enabled", "next_run_at", "last_run_at",
                    "total_run_count", "source")  # fmt: skip
    list_filter = ("enabled", "one_off")
    search_fields = ("name", "task", "description")
    actions = ["enable", "disable", "run_now"]
    readonly_fields = ("upcoming", "next_run_at", "last_run_at", "total_run_count", "source",
                       "created_at", "updated_at")  # fmt: skip
    fieldsets = [
        (None, {"fields": ("name", "task", "enabled", "description")}),
        ("Arguments and options", {"fields": ("args", "kwargs", "queue", "priority",
                                              "expire_seconds", "options")}),  # fmt: skip
        ("Schedule: give exactly one of a cron expression, an interval or a clocked time", {
            "fields": ("crontab", ("interval_every", "interval_period"), "clocked_time",
                       "timezone", "start_time", "one_off", "catch_up"),
        }),  # fmt: skip
        ("Runs", {"fields": ("upcoming", "next_run_at", "last_run_at", "total_run_count",
                             "source", "created_at", "updated_at")}),  # fmt: skip
    ]

    @admin.display(description="schedule")
    def schedule_display(self, obj: PeriodicTask) -> str:
        return obj.schedule_display()

    @admin.display(description="source")
    def source(self, obj: PeriodicTask) -> str:
        return "DJQ_BEAT_SCHEDULE" if obj.settings_hash else "admin"

    @admin.display(description="next 5 runs")
    def upcoming(self, obj: PeriodicTask) -> str:
        """The next runs in the schedule's zone and in UTC, as beat will fire them."""
        from .beat import preview
        from .schedules import zone

        if obj.pk is None or not obj.enabled:
            return "—"
        try:
            tz = zone(obj.zone_name())
            times = preview(obj, dj_timezone.now())
        except (TypeError, ValueError) as exc:
            return f"unusable schedule: {exc}"
        lines = [(t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z"), t.strftime("%H:%M:%S UTC"))
                 for t in times]  # fmt: skip
        return format_html_join(mark_safe("<br>"), "{} ({})", lines) or "none"

    def save_model(self, request, obj, form, change):
        """An edit of the schedule makes beat recompute ``next_run_at``; counters are kept."""
        if not change:
            super().save_model(request, obj, form, change)
            return
        if set(form.changed_data) & set(SCHEDULE_FIELDS):
            obj.next_run_at = None
        obj.save(update_fields=[*form.changed_data, "next_run_at", "updated_at"])

    @admin.action(description="Enable selected schedules", permissions=["change"])
    def enable(self, request, queryset):
        done = queryset.filter(enabled=False).update(enabled=True, next_run_at=None)
        self.message_user(request, f"Enabled {done} schedule(s).", messages.SUCCESS)

    @admin.action(description="Disable selected schedules", permissions=["change"])
    def disable(self, request, queryset):
        done = queryset.filter(enabled=True).update(enabled=False, next_run_at=None)
        self.message_user(request, f"Disabled {done} schedule(s).", messages.SUCCESS)

    @admin.action(description="Run selected schedules now", permissions=["change"])
    def run_now(self, request, queryset):
        from .beat import run_now

        ids = [run_now(pt) for pt in queryset]
        self.message_user(request, f"Enqueued {len([i for i in ids if i])} job(s): "
                          + ", ".join(i for i in ids if i), messages.SUCCESS)  # fmt: skip
