"""STARTTLS for the inbound listener (RFC 3207): the server side of the handshake.

Offered when TICKETGW_SMTP_TLS_CERT names a PEM certificate chain (its key in the same file or
in TICKETGW_SMTP_TLS_KEY), never required: a sending MTA that cannot do TLS still delivers,
as on any MX. The context is Python's default for serving (TLS 1.2 and newer, the system's
ciphers); a file that cannot be read stops the role at start, naming the setting.
"""

from __future__ import annotations

import ssl

from gateway.domain.errors import ConfigError
from gateway.domain.settings import Settings


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The listener's TLS context, or None when no certificate is configured."""
    if not settings.smtp_tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.smtp_tls_cert, settings.smtp_tls_key or None)
    except (OSError, ssl.SSLError) as exc:
        key = f" with the key {settings.smtp_tls_key}" if settings.smtp_tls_key else ""
        raise ConfigError(
            f"TICKETGW_SMTP_TLS_CERT: cannot load the certificate {settings.smtp_tls_cert}"
            f"{key} ({exc}); it must be a readable PEM chain whose key is in the same file "
            "or in TICKETGW_SMTP_TLS_KEY") from None
    return context
