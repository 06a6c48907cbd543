"""Reference rows are stored under their own kind; mapping kinds say what maps onto what.

Sage 300's chart of accounts was stored as source-side rows of kind "cost_center" (the mapping it
feeds) with the department segment in ``data["match_code"]``. It becomes rows of kind
"gl_account" with ``data["department"]``: the flow's mapping kind "cost_center" maps GL accounts
onto cost centers by that segment. Mappings and held records keep their keys.
"""

from django.db import migrations

SAGE_300 = "sage_300__servicenow"
RENAMED = {"match_code": "department", "match_label": "department_label"}


def forwards(apps, schema_editor):
    ReferenceRecord = apps.get_model("integrations", "ReferenceRecord")
    rows = ReferenceRecord.objects.filter(integration__kind=SAGE_300, side="source", kind="cost_center")
    for row in rows.iterator():
        data = row.data if isinstance(row.data, dict) else {}
        row.data = {RENAMED.get(key, key): value for key, value in data.items()}
        row.kind = "gl_account"
        row.save(update_fields=["kind", "data"])


def backwards(apps, schema_editor):
    ReferenceRecord = apps.get_model("integrations", "ReferenceRecord")
    back = {new: old for old, new in RENAMED.items()}
    rows = ReferenceRecord.objects.filter(integration__kind=SAGE_300, side="source", kind="gl_account")
    for row in rows.iterator():
        data = row.data if isinstance(row.data, dict) else {}
        row.data = {back.get(key, key): value for key, value in data.items()}
        row.kind = "cost_center"
        row.save(update_fields=["kind", "data"])


class Migration(migrations.Migration):

    dependencies = [
        ("integrations", "0007_connection_enet_method"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
