"""Attachments through signed links: `GET /f/TOKEN/NAME` (a ticket page signs them: `file_links`).

A link serves the stored bytes, never as a page: only a raster image (PNG, JPEG, GIF, WebP)
is shown inline with its type, so the HTML view of a mail can show its own pictures;
everything else, HTML and SVG included, is a download (`application/octet-stream`,
`Content-Disposition: attachment`), with `nosniff` and a sandboxing CSP in case a browser
would still look inside. NAME is only there so a browser saves the file under its name: the
token alone says which file it is.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.domain.errors import NotFound
from gateway.domain.inline_images import shown_inline
from gateway.domain.texts import _
from gateway.domain.tokens import Claim
from gateway.services import attachments
from web.file_links import PURPOSE
from web.pages import Web
from web.ticket import viewer_locale

# served files are never documents: no script, no style, no form, no plugin, whatever they hold
FILE_CSP = "default-src 'none'; sandbox"


def disposition(kind: str, filename: str) -> str:
    """`inline` or `attachment` with the file's name as RFC 6266 and RFC 8187 write it
    (`filename*=UTF-8''…`, percent-encoded: no quote, CR or LF of a hostile name gets through)."""
    return f"{kind}; filename*=UTF-8''{quote(filename, safe='')}"


def file_response(found: attachments.AttachmentFile, data: bytes) -> Response:
    """The bytes with a type a browser can only show as a picture or save."""
    inline = shown_inline(found.content_type)
    return Response(data, media_type=found.content_type.strip().lower() if inline
                    else "application/octet-stream", headers={
                        "content-disposition": disposition(
                            "inline" if inline else "attachment", found.filename),
                        "x-content-type-options": "nosniff",
                        "content-security-policy": FILE_CSP,
                    })


def routes(web: Web) -> list[Route]:
    async def download(request: Request) -> Response:
        claim = web.claim(request.path_params["token"], PURPOSE)
        if isinstance(claim, Response):
            return claim
        try:
            found = await web.run(attachments.read_attachment, web.runtime.sessions,
                                  claim.subject_id)
        except NotFound:
            return web.link_not_valid()
        if found.data is None:
            # 410 Gone, not 404: the link is good and names a file the ticket lists, but its
            # bytes were never kept and never will be; asking again cannot help
            locale = await web.run(viewer_locale, web.runtime,
                                   Claim("ticket", found.ticket_number, claim.party, None))
            return web.problem(
                410, _("Attachment not kept"),
                _("This attachment was too large to keep, so the ticket lists only its name "
                  "and size. Ask the sender to send it another way, such as a download link."),
                locale=locale)
        return file_response(found, found.data)

    return [Route("/f/{token}/{name:path}", download, methods=["GET"])]
