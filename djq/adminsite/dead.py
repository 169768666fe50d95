"""Dead letters in the admin (``states.DEAD``): the "Dead jobs" filter of the job list, its
"requeue" action (on the selected jobs, or on every job matching the filter through Django's
"Select all"), both through ``store.requeue_dead`` — the store stays the only writer."""

from __future__ import annotations

from django.contrib import admin, messages

from djq import states, store

#: the filter's values: any dead job, or one reason
ANY = "any"


class DeadFilter(admin.SimpleListFilter):
    """ "Dead jobs": failures that will not be tried again by themselves, by reason (served by
    the partial index djq_job_dead_idx)."""

    title = "dead jobs"
    parameter_name = "dead"

    def lookups(self, request, model_admin):
        return [(ANY, "All dead jobs")] + [
            (reason, reason.replace("_", " ")) for reason in states.DEAD_REASONS
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == ANY:
            return queryset.exclude(dead_reason="")
        if value in states.DEAD_REASONS:
            return queryset.filter(dead_reason=value)
        return queryset


REQUEUE_BULK = (
    "Requeue: dead jobs go back to waiting under the same id, due now, with their retries at "
    "zero; other jobs are left as they are."
)


class DeadLetterActions:
    """The job admin's "requeue" action (mixed into JobAdmin, which provides confirm_first,
    _ids and log_change through ``log``)."""

    @admin.action(description="Requeue selected dead jobs (run them again)", permissions=["change"])
    def requeue_dead(self, request, queryset):
        asked = self.confirm_first(request, queryset, "requeue_dead")
        if asked is not None:
            return asked
        ids = self._ids(request, queryset)
        if ids is None:
            return None
        done = store.requeue_dead(ids)
        self.log_requeued(request, done)
        left = len(ids) - len(done)
        text = f"Requeued {len(done)} dead job(s)"
        if left:
            text += f"; {left} job(s) that are not dead were left as they were"
        self.message_user(request, text + ".", messages.SUCCESS if done else messages.WARNING)
        return None
