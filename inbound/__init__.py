"""Mail in: receive it (SMTP, IMAP), parse it, decide what it is, apply the decision."""
