"""Streams resume from an opaque checkpoint instead of (cursor, every key at that cursor).

A watermark of the old form becomes a completed checkpoint at its cursor that still skips the
keys it remembered, so the first run after the upgrade reads and writes exactly what the old
code would have.
"""

from django.db import migrations, models


def forwards(apps, schema_editor):
    StreamState = apps.get_model("integrations", "StreamState")
    for state in StreamState.objects.exclude(cursor="").iterator():
        seen = [str(key) for key in (state.tie_keys or [])][:1000]
        state.checkpoint = {"cursor": state.cursor, "key": "", "complete": True, **({"seen": seen} if seen else {})}
        state.save(update_fields=["checkpoint"])


def backwards(apps, schema_editor):
    StreamState = apps.get_model("integrations", "StreamState")
    for state in StreamState.objects.exclude(checkpoint={}).iterator():
        checkpoint = state.checkpoint or {}
        state.tie_keys = list(checkpoint.get("seen") or [])
        state.cursor = str(checkpoint.get("cursor") or "")[:64]
        state.save(update_fields=["tie_keys", "cursor"])


class Migration(migrations.Migration):

    dependencies = [
        ("integrations", "0005_run_call_usage"),
    ]

    operations = [
        migrations.AddField(
            model_name="streamstate",
            name="checkpoint",
            field=models.JSONField(blank=True, default=dict, editable=False,
                                   help_text="Where the next run resumes, as the stream understands it."),
        ),
        migrations.AlterField(
            model_name="streamstate",
            name="cursor",
            field=models.CharField(blank=True, editable=False, max_length=64,
                                   help_text="The source's update time of the last record processed."),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(
            model_name="streamstate",
            name="tie_keys",
        ),
    ]
