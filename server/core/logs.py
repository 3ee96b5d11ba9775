"""Secrets never reach the logs: QR codes in ``/q/{token}`` deep links, invite codes and tokens in query
strings, full ID-card numbers typed into a search. Uvicorn's access log prints every path with its
query string, so the masking sits on the log records themselves, whatever logger or handler writes them.
"""

from __future__ import annotations

import logging
import re

_QR_LINK = re.compile(r"(/q/)[^\s?#\"']+")
_SECRET_PARAM = re.compile(
    r"([?&](?:code|token|access_token|refresh_token|member_token|password|id_card)=)[^&#\s\"']*", re.IGNORECASE
)
# 18-character (last one may be X) or old 15-digit ID-card numbers; phones (11) and ids stay readable.
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9A-Za-z])")


def mask_secrets(text: str) -> str:
    """'/q/eyJ…' → '/q/***'; '?code=abc' → '?code=***'; an ID-card number keeps its last 4 characters."""
    text = _QR_LINK.sub(r"\1***", text)
    text = _SECRET_PARAM.sub(r"\1***", text)
    return _ID_CARD.sub(lambda m: "*" * (len(m.group()) - 4) + m.group()[-4:], text)


class SecretMaskFilter(logging.Filter):
    """Rewrites a record's message and string arguments (uvicorn passes the path as an argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_secrets(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask_secrets(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: mask_secrets(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def install_log_masking() -> None:
    """On uvicorn's access logger, and on every handler configured so far (uvicorn's and the root's),
    so records of any logger that end there are masked. Safe to call again."""
    targets: list[logging.Filterer] = [logging.getLogger("uvicorn.access")]
    for name in (None, "uvicorn", "uvicorn.access", "uvicorn.error"):
        targets.extend(logging.getLogger(name).handlers)
    for target in targets:
        if not any(isinstance(f, SecretMaskFilter) for f in target.filters):
            target.addFilter(SecretMaskFilter())
