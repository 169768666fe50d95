"""The demo's users show their jobs (``JobsForObjectMixin``): those sent with ``related=user``
and those whose ``user_id`` keyword argument is the user's pk, with Retry/Revoke buttons."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from djq.admin_mixins import JobsForObjectMixin

User = get_user_model()


class UserWithJobsAdmin(JobsForObjectMixin, UserAdmin):
    djq_job_kwargs = ("user_id",)
    djq_job_match_arguments = False  # a bare number in a job's arguments is not a user
    readonly_fields = (*UserAdmin.readonly_fields, "djq_jobs")
    fieldsets = (*UserAdmin.fieldsets, ("Jobs", {"fields": ("djq_jobs",)}))


admin.site.unregister(User)
admin.site.register(User, UserWithJobsAdmin)
