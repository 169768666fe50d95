"""Fewer indexes on djq_job: each is written by every state change (issue 11).

A change of ``state`` is never a HOT update (the partial indexes name it), so every index gets an
entry per transition. Dropped: ``djq_job_due_idx`` (NEXT_DUE walks the claim index now),
``djq_job_lease_idx`` (the rescue sweep reads the few held rows through the held index; with the
lease in no index a heartbeat is a HOT update) and ``djq_job_running_idx`` (a dead worker's
rescue and the admin's running jobs read the held index too). ``djq_job_running_name_idx``
becomes ``djq_job_held_idx``. The comment of 0002 on HOT updates held for heartbeats only.

``waited``: set by ``AsyncResult.get()``; a completion NOTIFYs only the results someone waits on
(a column with a database default: adding it rewrites nothing).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("djq", "0006_job_stats"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="job",
            name="djq_job_due_idx",
        ),
        migrations.RemoveIndex(
            model_name="job",
            name="djq_job_running_idx",
        ),
        migrations.RemoveIndex(
            model_name="job",
            name="djq_job_lease_idx",
        ),
        migrations.RenameIndex(
            model_name="job",
            new_name="djq_job_held_idx",
            old_name="djq_job_running_name_idx",
        ),
        migrations.AddField(
            model_name="job",
            name="waited",
            field=models.BooleanField(db_default=False, default=False, editable=False),
        ),
    ]
