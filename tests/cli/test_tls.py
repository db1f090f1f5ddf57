"""HTTPS on every plane: ``slipway up`` with ``tls.cert_file`` and ``tls.key_file`` serves
the control plane, the gateway and MLflow's tracking server over TLS with that
certificate, and only over TLS."""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from slipway.core.errors import InvalidInput
from slipway.core.net import free_port
from slipway.core.settings import TlsSettings, load_settings
from slipway.core.tls import server_context
from slipway.services import Services
from tests.waiting import eventually


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "slipway-test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_a_certificate_needs_its_key_and_bad_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"tls\.key_file"):
        TlsSettings(cert_file="/x/cert.pem")
    assert server_context(TlsSettings()) is None
    with pytest.raises(InvalidInput) as caught:
        server_context(TlsSettings(cert_file=str(tmp_path / "none.pem"), key_file="/x"))
    assert caught.value.field == "tls.cert_file"
    cert_file, _ = self_signed(tmp_path)
    other_key = tmp_path / "other"
    other_key.mkdir()
    _, wrong_key = self_signed(other_key)
    with pytest.raises(InvalidInput) as caught:
        server_context(TlsSettings(cert_file=str(cert_file), key_file=str(wrong_key)))
    assert caught.value.field == "tls.cert_file"


def _up(home: Path, ports: dict[str, int], tls: tuple[Path, Path]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLIPWAY_", "MLFLOW_"))}
    env |= {
        "SLIPWAY_HOME": str(home),
        "SLIPWAY_CONFIG": str(home / "none.yaml"),
        "SLIPWAY_SERVER__AUTH": "true",
        "SLIPWAY_TLS__CERT_FILE": str(tls[0]),
        "SLIPWAY_TLS__KEY_FILE": str(tls[1]),
    }
    argv = [sys.executable, "-m", "slipway", "up", "--port", str(ports["control"])]
    argv += ["--workers", "0", "--mlflow-port", str(ports["mlflow"])]
    argv += ["--gateway-port", str(ports["gateway"])]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.mark.slow
def test_every_plane_serves_https_with_the_configured_certificate(tmp_path: Path) -> None:
    cert_file, key_file = self_signed(tmp_path)
    home = tmp_path / "ws"
    settings = load_settings(home=home)
    services = Services.open(settings)
    token = services.tokens.create("tls-admin", "admin", created_by="test")[1]
    services.close()
    ports = {"control": free_port(), "mlflow": free_port(), "gateway": free_port()}
    process = _up(home, ports, (cert_file, key_file))
    urls = {
        "control": f"https://127.0.0.1:{ports['control']}/api/v1/health/live",
        "mlflow": f"https://127.0.0.1:{ports['mlflow']}/health",
        "gateway": f"https://127.0.0.1:{ports['gateway']}/ping",
    }
    trusting = ssl.create_default_context(cafile=str(cert_file))
    waiting = dict(urls)

    def all_answer() -> bool:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        for plane, url in list(waiting.items()):
            try:
                if httpx.get(url, verify=trusting, timeout=2).status_code == 200:
                    del waiting[plane]
            except httpx.TransportError:
                pass
        return not waiting

    try:
        eventually(all_answer, what="every plane answered over HTTPS", timeout=120)
        headers = {"Authorization": f"Bearer {token}"}
        models = httpx.get(
            f"https://127.0.0.1:{ports['control']}/api/v1/models",
            headers=headers,
            verify=trusting,
        )
        assert models.status_code == 200
        experiments = httpx.get(
            f"https://127.0.0.1:{ports['mlflow']}/api/2.0/mlflow/experiments/search",
            params={"max_results": 1},
            headers=headers,
            verify=trusting,
        )
        assert experiments.status_code == 200
        for url in urls.values():
            # Plain HTTP is not answered, and the certificate is the configured one.
            with pytest.raises(httpx.TransportError):
                httpx.get(url.replace("https://", "http://"), timeout=5)
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                httpx.get(url, timeout=5)  # not in the system's trust store
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert f"https://127.0.0.1:{ports['control']}/api/v1" in output
    assert f"https://127.0.0.1:{ports['mlflow']}" in output
    assert "without TLS" not in output


def test_a_wrong_key_stops_the_server_before_it_listens(tmp_path: Path) -> None:
    cert_file, _ = self_signed(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env |= {
        "SLIPWAY_HOME": str(tmp_path / "ws"),
        "SLIPWAY_CONFIG": str(tmp_path / "none.yaml"),
        "SLIPWAY_TLS__CERT_FILE": str(cert_file),
        "SLIPWAY_TLS__KEY_FILE": str(tmp_path / "missing-key.pem"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "slipway", "server", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "tls.key_file" in done.stdout + done.stderr
