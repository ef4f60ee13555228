"""Helpers the real-daemon integration tests share."""

from __future__ import annotations

from pathlib import Path

from twisted.internet.utils import getProcessOutputAndValue


async def curl_post(url: str, path: Path, *extra: str) -> tuple[int, str, str, str]:
    """curl POSTs the file ``path`` to ``url`` as ``application/json`` (with
    ``extra`` options before the body). Returns curl's exit code, the HTTP
    status, the answer's text and curl's stderr."""
    out, err, code = await getProcessOutputAndValue(
        "/usr/bin/curl",
        [
            "-sS",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            "POST",
            *extra,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            f"@{path}",
            url,
        ],
    )
    text, _, status = out.decode().rpartition("\n")
    return code, status, text, err.decode()
