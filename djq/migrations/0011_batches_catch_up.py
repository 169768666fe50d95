"""Batches (djq_batch), and the missed-run policy of periodic tasks: the boolean ``catch_up``
becomes "once" (False) or "all" (True), with a per-task ``backfill_limit``."""

from django.db import migrations, models


def policy_from_boolean(apps, schema_editor):
    PeriodicTask = apps.get_model("djq", "PeriodicTask")
    db = schema_editor.connection.alias
    PeriodicTask.objects.using(db).filter(catch_up_old=True).update(catch_up="all")


def boolean_from_policy(apps, schema_editor):
    PeriodicTask = apps.get_model("djq", "PeriodicTask")
    db = schema_editor.connection.alias
    PeriodicTask.objects.using(db).filter(catch_up="all").update(catch_up_old=True)


class Migration(migrations.Migration):
    dependencies = [
        ("djq", "0010_job_concurrency_key"),
    ]

    operations = [
        migrations.CreateModel(
            name="Batch",
            fields=[
                ("id", models.CharField(max_length=255, primary_key=True, serialize=False)),
                ("size", models.PositiveIntegerField(default=0, help_text="members added")),
                (
                    "ended",
                    models.PositiveIntegerField(
                        default=0, help_text="members that ended (any state)"
                    ),
                ),
                (
                    "failed",
                    models.PositiveIntegerField(
                        default=0, help_text="members that ended not SUCCESS"
                    ),
                ),
                ("children", models.JSONField(default=list, help_text="member job ids, in order")),
                (
                    "on_finish",
                    models.JSONField(
                        blank=True, help_text="runs once all members ended", null=True
                    ),
                ),
                (
                    "on_success",
                    models.JSONField(blank=True, help_text="runs if all succeeded", null=True),
                ),
                (
                    "on_failure",
                    models.JSONField(blank=True, help_text="runs if any did not", null=True),
                ),
                (
                    "callback_ids",
                    models.JSONField(
                        blank=True, default=dict, help_text="the callbacks' job ids, by name"
                    ),
                ),
                (
                    "closed_at",
                    models.DateTimeField(blank=True, help_text="no member added after", null=True),
                ),
                (
                    "finished_at",
                    models.DateTimeField(blank=True, help_text="callbacks enqueued", null=True),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "verbose_name_plural": "batches",
                "db_table": "djq_batch",
                "ordering": ["-created_at"],
            },
        ),
        migrations.AddField(
            model_name="periodictask",
            name="backfill_limit",
            field=models.PositiveIntegerField(
                blank=True,
                help_text='with catch-up "all": at most this many missed ticks run, the latest ones (empty: DJQ_BEAT_BACKFILL_LIMIT)',
                null=True,
            ),
        ),
        migrations.RenameField("periodictask", "catch_up", "catch_up_old"),
        migrations.AddField(
            model_name="periodictask",
            name="catch_up",
            field=models.CharField(
                choices=[
                    ("once", "once: one run for all missed ticks"),
                    ("skip", "skip: drop missed ticks, run at the next one"),
                    ("all", "all: one run per missed tick (bounded)"),
                ],
                default="once",
                help_text="ticks missed while beat was down: run once for all of them, skip them, or run each (up to the backfill limit)",
                max_length=8,
            ),
        ),
        migrations.RunPython(policy_from_boolean, boolean_from_policy),
        migrations.RemoveField("periodictask", "catch_up_old"),
        migrations.AddConstraint(
            model_name="periodictask",
            constraint=models.CheckConstraint(
                condition=models.Q(("catch_up__in", ["once", "skip", "all"])),
                name="djq_periodic_catch_up_valid",
            ),
        ),
    ]
