"""Jobs of a model instance in any ModelAdmin: ``JobsForObjectMixin``.

    from djq.admin_mixins import JobsForObjectMixin

    @admin.register(Invoice)
    class InvoiceAdmin(JobsForObjectMixin, admin.ModelAdmin):
        djq_job_kwargs = ("invoice_id",)       # keyword arguments that carry the object's pk
        readonly_fields = ("djq_jobs",)        # where the list is shown

A job is the object's when its positional arguments contain the object's primary key, or one
of ``djq_job_kwargs`` is it (``djq_job_tasks`` narrows to some task names). The newest
``djq_job_limit`` are listed with their state, each linked to its page (retry, revoke there).
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from . import admin_search
from .admin_support import state_badge, when
from .models import Job


class JobsForObjectMixin:
    djq_job_kwargs: tuple[str, ...] = ()
    djq_job_tasks: tuple[str, ...] = ()
    djq_job_limit = 20

    def djq_jobs_of(self, obj):
        """The object's jobs, newest first (a queryset)."""
        jobs = Job.objects.all()
        if self.djq_job_tasks:
            jobs = jobs.filter(name__in=self.djq_job_tasks)
        found = admin_search.with_argument(jobs, obj.pk)
        for key in self.djq_job_kwargs:
            found = found | admin_search.with_kwarg(jobs, key, obj.pk)
        return found.order_by("-created_at")

    @admin.display(description="jobs")
    def djq_jobs(self, obj) -> str:
        if obj is None or obj.pk is None:
            return "—"
        jobs = self.djq_jobs_of(obj).only("id", "name", "state", "custom_state", "created_at")
        rows = ((reverse("admin:djq_job_change", args=[str(j.pk)]), j.name,
                 state_badge(j.state, j.custom_state), when(j.created_at))
                for j in jobs[: self.djq_job_limit])  # fmt: skip
        listed = format_html_join("", '<li><a href="{}">{}</a> {} {}</li>', rows)
        return format_html('<ul class="djq-object-jobs">{}</ul>', listed) if listed else "none"


__all__ = ["JobsForObjectMixin"]
