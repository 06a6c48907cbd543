"""Mappings out to a spreadsheet and back: checked per line, landing as suggestions, never approvals."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from integrations.engine.mapping_csv import COLUMNS
from integrations.models import AuditEvent, Mapping, MappingReason, MappingStatus


def _export(w, user: str = "approver", **filters) -> str:
    ids = list(Mapping.objects.filter(integration=w.acme, **filters).values_list("pk", flat=True))
    response = w.client(user).post("/admin/integrations/mapping/", {
        "action": "export_selected", "_selected_action": ids, "index": 0})
    assert response["Content-Type"].startswith("text/csv")
    return response.content.decode()


def _upload(w, text: str, user: str = "approver"):
    return w.client(user).post("/admin/integrations/mapping/import/", {
        "file": SimpleUploadedFile("mappings.csv", text.encode("utf-8"), "text/csv")}, follow=True)


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS)
    writer.writeheader()
    writer.writerows({c: r.get(c, "") for c in COLUMNS} for r in rows)
    return out.getvalue()


def test_an_export_names_every_column_finance_keeps_and_comes_back_unchanged(w):
    text = _export(w)
    rows = _rows(text)
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == Mapping.objects.filter(integration=w.acme).count()
    by_code = {r["source_code"]: r for r in rows}
    assert by_code["61200"]["status"] == "unmapped" and by_code["61200"]["target_code"] == ""
    assert by_code["60200"]["confidence"] == "100" and by_code["60200"]["integration"] == "x3-to-sn"
    before = {m.pk: (m.status, m.target_code, m.reason) for m in Mapping.objects.all()}
    body = _upload(w, text).content.decode()
    assert "Imported 0 suggestion(s) to review" in body and "1 without a target skipped" in body
    assert {m.pk: (m.status, m.target_code, m.reason) for m in Mapping.objects.all()} == before


def test_imported_rows_land_as_suggestions_to_approve_never_approved(w):
    rows = _rows(_export(w))
    changed = [dict(r, target_code="69900", target_label="whatever the sheet says")
               for r in rows if r["source_code"] in ("61200", "60200")]
    body = _upload(w, _csv(changed)).content.decode()
    assert "Imported 2 suggestion(s) to review (0 new, 2 changed)" in body and "Nothing was approved" in body
    for code in ("61200", "60200"):
        mapping = Mapping.objects.get(integration=w.acme, source_code=code)
        assert (mapping.status, mapping.reason, mapping.target_code, mapping.target_label) == (
            MappingStatus.SUGGESTED, MappingReason.IMPORTED, "69900", "Suspense - unallocated spend")
    assert AuditEvent.objects.get(action="mapping.imported").detail["count"] == 2


def test_each_wrong_line_is_named_and_nothing_is_imported(w):
    approved = Mapping.objects.filter(integration=w.acme, status=MappingStatus.APPROVED, kind="gl_account").first()
    rejected = Mapping.objects.get(integration=w.acme, source_code="60500")
    rejected.status, rejected.rejected_targets = MappingStatus.REJECTED, ["60500"]
    rejected.save()
    lines = [
        {"integration": "x3-to-sn", "kind": "gl_account", "source_code": "61200", "target_code": "69900"},  # fine
        {"integration": "x3-to-sn", "kind": "gl_account", "source_code": "60300", "target_code": "69990"},
        {"integration": "x3-to-sn", "kind": "supplier_group", "source_code": "X", "target_code": "69900"},
        {"integration": "globex-sync", "kind": "gl_account", "source_code": "60300", "target_code": "69900"},
        {"integration": "x3-to-sn", "kind": "gl_account", "source_code": approved.source_code, "target_code": "69900"},
        {"integration": "x3-to-sn", "kind": "gl_account", "source_code": "60500", "target_code": "60500"},
        {"integration": "x3-to-sn", "kind": "gl_account", "source_code": "61200", "target_code": "69900"},
        {"integration": "x3-to-sn", "kind": "gl_account", "source_code": "60700", "target_code": "69900",
         "confidence": "high"},
    ]
    body = _upload(w, _csv(lines)).content.decode()
    assert "Nothing imported: 7 lines need fixing." in body
    for expected in (
        "line 3: target 69990 is not a known gl_account on the target side",
        "line 4: kind &#x27;supplier_group&#x27; is not one of",
        "line 5: no integration named &#x27;globex-sync&#x27; that you may import into",
        f"line 6: gl_account {approved.source_code} is approved to {approved.target_code}",
        "line 7: 60500 → 60500 was rejected before, and is never suggested again",
        "line 8: gl_account 61200 is already given on line 2",
        "line 9: confidence &#x27;high&#x27; is not a percentage 0-100",
    ):
        assert expected in body, expected
    assert Mapping.objects.get(integration=w.acme, source_code="61200").status == MappingStatus.UNMAPPED
    assert not AuditEvent.objects.filter(action="mapping.imported").exists()


def test_a_file_without_the_needed_columns_or_in_another_encoding_is_refused(w):
    body = _upload(w, "code,name\n61200,Misc\n").content.decode()
    assert "line 1: the header must name the columns kind, source_code, target_code" in body
    response = w.client("approver").post("/admin/integrations/mapping/import/", {
        "file": SimpleUploadedFile("m.csv", "kind,source_code,target_code\ngl_account,61200,Déjà\n".encode("latin-1"))})
    assert "not UTF-8 text" in response.content.decode()


def test_excel_semicolons_and_formula_cells_survive_the_round_trip(w):
    mapping = Mapping.objects.get(integration=w.acme, source_code="61200")
    Mapping.objects.filter(pk=mapping.pk).update(source_label="=SUM(A1:A9)")
    text = _export(w, source_code="61200")
    assert "'=SUM(A1:A9)" in text, "a spreadsheet must not run a label as a formula"
    semicolons = "\ufeffintegration;kind;source_code;target_code\nx3-to-sn;gl_account;61200;69900\n"
    assert "Imported 1 suggestion(s)" in _upload(w, semicolons).content.decode()


def test_only_approvers_import(w):
    text = _csv([{"integration": "x3-to-sn", "kind": "gl_account", "source_code": "61200", "target_code": "69900"}])
    assert _upload(w, text, "viewer").status_code == 403
    assert _upload(w, text, "operator").status_code == 403
    body = _upload(w, text, "outsider").content.decode()  # Globex's admin: Acme's integration is not theirs
    assert "no integration named &#x27;x3-to-sn&#x27; that you may import into" in body
    assert Mapping.objects.get(integration=w.acme, source_code="61200").status == MappingStatus.UNMAPPED


def test_the_command_exports_and_imports(w, tmp_path: Path):
    out = tmp_path / "mappings.csv"
    call_command("mappings", "--tenant", "acme", "--integration", "x3-to-sn", "--export", str(out))
    rows = _rows(out.read_text())
    assert {r["source_code"] for r in rows} >= {"61200", "60200"}
    for row in rows:
        if row["source_code"] == "61200":
            row["target_code"] = "69900"
    out.write_text(_csv(rows))
    stdout = io.StringIO()
    call_command("mappings", "--tenant", "acme", "--integration", "x3-to-sn", "--import", str(out), "--json",
                 stdout=stdout)
    assert json.loads(stdout.getvalue())["updated"] == 1
    assert Mapping.objects.get(integration=w.acme, source_code="61200").status == MappingStatus.SUGGESTED
    out.write_text(_csv([{"kind": "gl_account", "source_code": "60300", "target_code": "NOPE"}]))
    with pytest.raises(CommandError, match="1 line"):
        call_command("mappings", "--tenant", "acme", "--integration", "x3-to-sn", "--import", str(out),
                     stdout=io.StringIO(), stderr=io.StringIO())


def _api(w, user: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(w.users[user])
    return client


def test_the_api_exports_csv_and_imports_with_errors_per_line(w):
    response = _api(w, "viewer").get("/api/mappings/export/", {"integration": w.acme.pk})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = _rows(response.content.decode())
    assert {r["integration"] for r in rows} == {"x3-to-sn"}
    good = _csv([{"kind": "gl_account", "source_code": "61200", "target_code": "69900"}])
    bad = _csv([{"kind": "gl_account", "source_code": "61200", "target_code": "69990"}])
    refused = _api(w, "approver").post("/api/mappings/import/", {"csv": bad, "integration": w.acme.pk}, format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"] == [
        {"line": 2, "message": "target 69990 is not a known gl_account on the target side"}]
    assert _api(w, "viewer").post("/api/mappings/import/", {"csv": good, "integration": w.acme.pk},
                                  format="json").status_code == 403
    assert _api(w, "outsider").post("/api/mappings/import/", {"csv": good, "integration": w.acme.pk},
                                    format="json").status_code == 400  # not theirs: no such integration
    upload = SimpleUploadedFile("m.csv", good.encode(), "text/csv")
    done = _api(w, "approver").post("/api/mappings/import/", {"file": upload, "integration": w.acme.pk},
                                    format="multipart")
    assert done.status_code == 200 and done.json()["updated"] == 1
    listed = _api(w, "approver").get("/api/mappings/", {"integration": w.acme.pk, "order": "impact"}).json()
    first = listed["results"][0]
    assert first["held_count"] > 0 and first["held_money"]
    held = [r["held_count"] for r in listed["results"]]
    assert held[0] >= held[-1]
