"""A CA bundle named by path (``REQUESTS_CA_BUNDLE``): still verified against, looked at once.

A real TLS server on 127.0.0.1 with a certificate of its own: the vendor client trusts it only
through the bundle the environment names, refuses a server the bundle does not vouch for, and
asks the file system about the bundle's path once however many calls it makes (``requests``
alone does it two or three times per call).
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import os
import ssl
import threading
from pathlib import Path
from unittest import mock

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from integrations.systems import http as vendor_http
from integrations.systems.errors import TransientError
from integrations.systems.http import HttpClient, HttpPolicy


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the stdlib's name
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def tls_server(tmp_path):
    cert_file, key_file = _self_signed(tmp_path, "vendor")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert_file
    server.shutdown()
    server.server_close()


def _client(url: str) -> HttpClient:
    return HttpClient(url, policy=HttpPolicy(max_retries=0, timeout=10))


def test_the_bundle_the_environment_names_is_trusted_and_looked_at_once(tls_server, monkeypatch):
    url, cert_file = tls_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_file))
    vendor_http._ca_path_kind.cache_clear()
    client = _client(url)
    looked_at = []
    real_isdir, real_exists = os.path.isdir, os.path.exists

    def isdir(path):
        looked_at.append(("isdir", os.fspath(path)))
        return real_isdir(path)

    def exists(path):
        looked_at.append(("exists", os.fspath(path)))
        return real_exists(path)

    with mock.patch("os.path.isdir", isdir), mock.patch("os.path.exists", exists):
        for _ in range(5):
            assert client.request("GET", "/api/ping").json() == {"ok": True}
    about_bundle = [call for call in looked_at if call[1] == str(cert_file)]
    # once per path: is it a directory, and (it is not) does it exist; requests alone asks 15 times
    assert sorted(about_bundle) == [("exists", str(cert_file)), ("isdir", str(cert_file))], about_bundle


def test_a_server_the_bundle_does_not_vouch_for_is_refused(tls_server, tmp_path, monkeypatch):
    url, _ = tls_server
    other, _ = _self_signed(tmp_path, "someone-else")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    with pytest.raises(TransientError) as refused:
        _client(url).request("GET", "/api/ping")
    assert "SSLError" in str(refused.value)


def test_a_bundle_path_that_does_not_exist_is_refused_as_requests_refuses_it(tls_server, tmp_path, monkeypatch):
    url, _ = tls_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    vendor_http._ca_path_kind.cache_clear()
    with pytest.raises(OSError, match="invalid path"):
        _client(url).request("GET", "/api/ping")
