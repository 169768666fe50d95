"""Jobs of a model instance in any ModelAdmin: ``JobsForObjectMixin``.

    from djq.admin_mixins import JobsForObjectMixin

    @admin.register(Invoice)
    class InvoiceAdmin(JobsForObjectMixin, admin.ModelAdmin):
        djq_job_kwargs = ("invoice_id",)       # keyword arguments that carry the object's pk
        readonly_fields = ("djq_jobs",)        # where the list is shown

A job is the object's when it was sent with ``related=`` naming the object
(``send_invoice.apply_async((7,), related=invoice)``), when its positional arguments contain the
object's primary key, or when one of ``djq_job_kwargs`` is it (``djq_job_tasks`` narrows to some
task names; ``djq_job_match_arguments = False`` keeps only ``related=``). The newest
``djq_job_limit`` are listed with their state, each linked to its page, with **Retry** (failed
or revoked jobs) and **Revoke** (waiting or running ones) buttons that come back to the object.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from djq import states
from djq.adminsite import search as admin_search
from djq.adminsite.support import state_badge, when
from djq.models import Job
from djq.options import related_key


class JobsForObjectMixin:
    admin_site: admin.AdminSite  # (set by the ModelAdmin it is mixed into)
    djq_job_kwargs: tuple[str, ...] = ()
    djq_job_tasks: tuple[str, ...] = ()
    djq_job_limit = 20
    #: also the jobs whose positional arguments contain the object's pk (False: related= only)
    djq_job_match_arguments = True

    class Media:  # the state badges' colours
        css = {"all": ("djq/admin.css",)}

    def djq_jobs_of(self, obj):
        """The object's jobs, newest first (a queryset)."""
        jobs = Job.objects.all()
        if self.djq_job_tasks:
            jobs = jobs.filter(name__in=self.djq_job_tasks)
        found = admin_search.with_related(jobs, related_key(obj))
        if self.djq_job_match_arguments:
            found = found | admin_search.with_argument(jobs, obj.pk)
        for key in self.djq_job_kwargs:
            found = found | admin_search.with_kwarg(jobs, key, obj.pk)
        return found.order_by("-created_at")

    @admin.display(description="jobs")
    def djq_jobs(self, obj) -> str:
        if obj is None or obj.pk is None:
            return "—"
        jobs = self.djq_jobs_of(obj).only("id", "name", "state", "custom_state", "created_at")
        back = urlencode(
            {
                "next": reverse(
                    f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change",
                    args=[quote(obj.pk)],
                    current_app=self.admin_site.name,
                )
            }
        )
        rows = (
            (
                reverse("admin:djq_job_change", args=[quote(j.pk)]),
                j.name,
                state_badge(j.state, j.custom_state),
                when(j.created_at),
                _buttons(j, back),
            )
            for j in jobs[: self.djq_job_limit]
        )
        listed = format_html_join("", '<li><a href="{}">{}</a> {} {} {}</li>', rows)
        return format_html('<ul class="djq-object-jobs">{}</ul>', listed) if listed else "none"


def _buttons(job: Job, back: str) -> str:
    """Retry / Revoke for one job: buttons of the object's own form (it carries the CSRF token)
    that post to the job's action URL, which comes back to the object's page."""
    shown = []
    if job.state in (states.FAILURE, states.REVOKED):
        shown.append(("retry", "Retry"))
    if job.state in states.UNREADY_STATES:
        shown.append(("revoke", "Revoke"))
    return format_html_join(
        mark_safe(" "),
        '<button type="submit" class="button djq-job-{}" '
        'formaction="{}?{}" formmethod="post" formnovalidate>{}</button>',
        (
            (action, reverse("admin:djq_job_action", args=[quote(job.pk), action]), back, label)
            for action, label in shown
        ),
    )


__all__ = ["JobsForObjectMixin", "related_key"]
