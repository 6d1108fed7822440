"""STARTTLS on the inbound listener: offered with a certificate, mail through it is taken as
any other; without one it is not offered; a certificate that cannot be read stops the start
with a sentence naming the setting (SQLite and PostgreSQL, real SMTP over real TLS)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import smtplib
import socket
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.domain.errors import ConfigError
from gateway.domain.facts import Role
from gateway.domain.settings import parse_settings
from inbound.smtp import start_smtp
from tests.inbound.conftest import CUSTOMER, SmtpServer, World, crlf, make_mail

HOST = "mx.tickets.localhost"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for HOST and its key, as two PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "mx.crt", folder / "mx.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def with_tls(world: World, cert: str, key: str = "") -> None:
    world.runtime.settings = dataclasses.replace(world.runtime.settings, smtp_tls_cert=cert,
                                                 smtp_tls_key=key)


def test_mail_sent_over_starttls_is_taken(world: World, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with_tls(world, str(cert), str(key))
    number = world.open()
    server = SmtpServer(world.runtime)
    try:
        client = smtplib.SMTP("127.0.0.1", server.port, timeout=30)
        client.ehlo("client.example")
        assert client.has_extn("starttls")
        trusting = ssl.create_default_context(cafile=str(cert))
        trusting.check_hostname = False  # the test connects to 127.0.0.1, not HOST
        assert client.starttls(context=trusting)[0] == 220
        client.ehlo("client.example")
        assert not client.has_extn("starttls")  # once is enough
        assert client.sock is not None and client.sock.version() in ("TLSv1.2", "TLSv1.3")
        client.mail(CUSTOMER)
        client.rcpt(world.reply_address(number, Role.CUSTOMER))
        code, answer = client.data(crlf(make_mail(body="sent over TLS")))
        client.quit()
    finally:
        server.stop()
    assert code == 250, answer
    messages = world.ticket(number)["messages"]
    assert [m["text"] for m in messages][-1] == "sent over TLS"  # type: ignore[index]


def test_without_a_certificate_starttls_is_not_offered(world: World) -> None:
    server = SmtpServer(world.runtime)
    try:
        client = server.client()
        assert not client.has_extn("starttls")
        assert client.docmd("STARTTLS")[0] in (454, 502)  # not available: nothing breaks
        client.quit()
    finally:
        server.stop()


def test_an_unreadable_certificate_stops_the_start_naming_the_setting(
        world: World, tmp_path: Path) -> None:
    (tmp_path / "broken.pem").write_text("not a certificate")
    for cert in (tmp_path / "missing.pem", tmp_path / "broken.pem"):
        with_tls(world, str(cert))
        with pytest.raises(ConfigError) as refused:
            asyncio.run(start_smtp(world.runtime, "127.0.0.1", 0))
        assert "TICKETGW_SMTP_TLS_CERT" in refused.value.message
        assert str(cert) in refused.value.message


def test_a_key_without_its_certificate_is_refused_when_read() -> None:
    with pytest.raises(ConfigError, match="TICKETGW_SMTP_TLS_CERT is not"):
        parse_settings({}, {"TICKETGW_SMTP_TLS_KEY": "/etc/ssl/private/mx.key"})
    both = parse_settings({}, {"TICKETGW_SMTP_TLS_CERT": "mx.pem"})
    assert (both.smtp_tls_cert, both.smtp_tls_key) == ("mx.pem", "")


def test_a_failed_handshake_is_one_line_and_the_listener_goes_on(
        world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A client that asks for STARTTLS and then sends no TLS hello (scanners do) is closed
    with one warning and no traceback; the next client is served as ever."""
    cert, key = self_signed(tmp_path)
    with_tls(world, str(cert), str(key))
    server = SmtpServer(world.runtime)
    try:
        with caplog.at_level(logging.INFO, logger="ticketgw.inbound"), \
                socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            lines = sock.makefile("rb")
            assert lines.readline().startswith(b"220 ")
            sock.sendall(b"EHLO scanner.example\r\nSTARTTLS\r\n")
            while not lines.readline().startswith(b"250 "):
                pass
            assert lines.readline().startswith(b"220 ")
            sock.sendall(b"this is not a TLS hello\r\n")
            assert lines.readline() == b""  # closed
        client = server.client()
        assert client.noop()[0] == 250
        client.quit()
    finally:
        server.stop()
    failed = [r for r in caplog.records if "TLS handshake" in r.getMessage()]
    assert len(failed) == 1 and failed[0].levelno == logging.WARNING
    assert failed[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_commands_sent_before_the_handshake_are_not_run_after_it(
        world: World, tmp_path: Path) -> None:
    """STARTTLS command injection (CVE-2011-0411's kind): a MAIL FROM pipelined behind
    STARTTLS in clear text is dropped, not carried into the encrypted session."""
    cert, key = self_signed(tmp_path)
    with_tls(world, str(cert), str(key))
    server = SmtpServer(world.runtime)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            lines = sock.makefile("rb")
            lines.readline()
            sock.sendall(b"EHLO client.example\r\n")
            while not lines.readline().startswith(b"250 "):
                pass
            sock.sendall(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n")
            assert lines.readline().startswith(b"220 ")
            trusting = ssl.create_default_context(cafile=str(cert))
            trusting.check_hostname = False
            with trusting.wrap_socket(sock, server_hostname=HOST) as tls:
                secure = tls.makefile("rb")
                tls.sendall(b"EHLO client.example\r\n")
                while not secure.readline().startswith(b"250 "):
                    pass
                tls.sendall(b"RCPT TO:<support@tickets.localhost>\r\n")
                assert secure.readline().startswith(b"503 ")  # no MAIL: it was dropped
                tls.sendall(b"QUIT\r\n")
                assert secure.readline().startswith(b"221 ")
    finally:
        server.stop()
