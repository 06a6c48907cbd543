"""Start-up without a key is refused outside development; stored data is owner-only (issue 13, defect 2)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def _manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("PORTAL_DEV", "DEBUG", "SECRET_KEY", "SECRET_KEY_FILE", "DJANGO_SETTINGS_MODULE")}
    clean.update({"DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}", "PORTAL_HTTPS": "false", **env})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True,
                          timeout=120)


def test_start_up_is_refused_without_a_key_outside_development(tmp_path):
    result = _manage(tmp_path, "check")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "PORTAL_DEV=true" in result.stderr  # and it says how to proceed on a laptop


def test_the_public_development_key_is_refused_outside_development(tmp_path):
    result = _manage(tmp_path, "check", SECRET_KEY="dev-only-insecure-secret-key-change-me-0123456789abcdef")
    assert result.returncode != 0
    assert "public development key" in result.stderr


def test_a_key_file_is_read_and_the_database_file_is_owner_only(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("k" * 20 + "random-enough-for-a-test-0123456789\n")
    result = _manage(tmp_path, "migrate", "--verbosity", "0", SECRET_KEY_FILE=str(key_file))
    assert result.returncode == 0, result.stderr
    database = tmp_path / "portal.sqlite3"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    for companion in (tmp_path / "portal.sqlite3-wal", tmp_path / "portal.sqlite3-shm"):
        if companion.exists():
            assert stat.S_IMODE(companion.stat().st_mode) & 0o077 == 0


def test_a_missing_key_file_is_named(tmp_path):
    result = _manage(tmp_path, "check", SECRET_KEY_FILE=str(tmp_path / "nope"))
    assert result.returncode != 0
    assert "SECRET_KEY_FILE" in result.stderr and "No such file" in result.stderr


def test_an_existing_world_readable_database_is_made_owner_only(tmp_path):
    database = tmp_path / "portal.sqlite3"
    database.touch(mode=0o644)
    os.chmod(database, 0o644)
    result = _manage(tmp_path, "check", PORTAL_DEV="true")
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
