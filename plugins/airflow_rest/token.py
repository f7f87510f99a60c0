"""When to renew an API token, read from the JWT itself.

The payload is decoded without verifying the signature: only the server can verify it, and
the client only needs ``exp`` to renew before the server starts answering 401.
"""

from __future__ import annotations

import base64
import json

# Renew this long before expiry (at most a quarter of the token's lifetime), so a request
# sent just before ``exp`` does not race it.
RENEW_MARGIN_S = 30.0


def renew_at(token: str) -> float | None:
    """Epoch seconds after which ``token`` should be replaced; None if it carries no ``exp``."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        expires = float(claims["exp"])
        issued = float(claims.get("iat", expires - 4 * RENEW_MARGIN_S))
    except (IndexError, KeyError, TypeError, ValueError, AttributeError):
        return None
    return expires - min(RENEW_MARGIN_S, max(0.0, expires - issued) / 4)
