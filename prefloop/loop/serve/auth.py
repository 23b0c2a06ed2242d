"""Who may post a webhook: Label Studio's shared-secret header, Argilla's Standard Webhooks signature.

Each check returns the reason a delivery is refused (a metrics label, never a secret) or None.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["check_argilla_signature", "check_ls_token"]


def check_ls_token(headers: Mapping[str, str], secret: str) -> str | None:
    """``Authorization: Bearer <secret>`` or ``X-Prefloop-Token: <secret>``, compared in constant time."""
    offered = headers.get("x-prefloop-token")
    if offered is None:
        scheme, _, value = (headers.get("authorization") or "").partition(" ")
        offered = value.strip() if scheme.lower() == "bearer" else None
    if offered is None:
        return "unauthorized"
    return None if hmac.compare_digest(offered.encode(), secret.encode()) else "unauthorized"


def check_argilla_signature(body: bytes, headers: Mapping[str, str], secrets: Sequence[Webhook]) -> str | None:
    """Standard Webhooks: HMAC-SHA256 of ``id.timestamp.body`` under any of ``secrets`` (a rotation
    keeps the old and the new one), the timestamp within ±5 minutes of this machine's clock."""
    wanted = {k: headers.get(k, "") for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    if not all(wanted.values()):
        return "unauthorized"
    reason = "bad_signature"
    for secret in secrets:
        try:
            secret.verify(body, wanted, json_parse=False)
            return None
        except WebhookVerificationError as exc:
            if "timestamp" in str(exc).lower():  # too old / too new / not a timestamp: same for every secret
                return "stale_timestamp"
            reason = "bad_signature"
    return reason
