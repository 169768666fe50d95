"""RESERVED: jobs claimed into a worker's reserve are leased but not started (issue 11).

The new state joins the state check; the lease constraint and the partial indexes of held jobs
(heartbeat, rescue, concurrency limits) cover RESERVED as well as STARTED.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('djq', '0003_text_ids'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='job',
            name='djq_job_state_valid',
        ),
        migrations.RemoveConstraint(
            model_name='job',
            name='djq_job_running_has_lease',
        ),
        migrations.RemoveIndex(
            model_name='job',
            name='djq_job_running_idx',
        ),
        migrations.RemoveIndex(
            model_name='job',
            name='djq_job_running_name_idx',
        ),
        migrations.RemoveIndex(
            model_name='job',
            name='djq_job_lease_idx',
        ),
        migrations.AlterField(
            model_name='job',
            name='state',
            field=models.CharField(choices=[('FAILURE', 'FAILURE'), ('IGNORED', 'IGNORED'), ('PENDING', 'PENDING'), ('RESERVED', 'RESERVED'), ('RETRY', 'RETRY'), ('REVOKED', 'REVOKED'), ('STARTED', 'STARTED'), ('SUCCESS', 'SUCCESS')], default='PENDING', max_length=16),
        ),
        migrations.AddIndex(
            model_name='job',
            index=models.Index(condition=models.Q(('state__in', ['RESERVED', 'STARTED'])), fields=['worker'], name='djq_job_running_idx'),
        ),
        migrations.AddIndex(
            model_name='job',
            index=models.Index(condition=models.Q(('state__in', ['RESERVED', 'STARTED'])), fields=['name', 'queue'], name='djq_job_running_name_idx'),
        ),
        migrations.AddIndex(
            model_name='job',
            index=models.Index(condition=models.Q(('state__in', ['RESERVED', 'STARTED'])), fields=['lease_expires_at'], name='djq_job_lease_idx'),
        ),
        migrations.AddConstraint(
            model_name='job',
            constraint=models.CheckConstraint(condition=models.Q(('state__in', ['FAILURE', 'IGNORED', 'PENDING', 'RESERVED', 'RETRY', 'REVOKED', 'STARTED', 'SUCCESS'])), name='djq_job_state_valid'),
        ),
        migrations.AddConstraint(
            model_name='job',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('state__in', ['RESERVED', 'STARTED']), _negated=True), models.Q(('lease_expires_at__isnull', False), models.Q(('worker', ''), _negated=True)), _connector='OR'), name='djq_job_running_has_lease'),
        ),
    ]
