"""Shopware 6 Admin API (https://shopware.stoplight.io/docs/admin-api): the VIP promotion's individual codes.

- Token: client credentials, `expires_in` 600 s and no refresh token; shared by every task and process
  (token.py: one `ProviderAccessToken` row), used until a minute before expiry and fetched again on a 401.
- A code is created with `POST /api/promotion-individual-code` and an id we choose, because
  `add-individual` does not say which codes it made. Read back with `GET /api/promotion-individual-code/{id}`.
- A duplicate code or id answers HTTP 500 with "1062 Duplicate entry" in `errors[0].detail`, not a 4xx.
"""

import threading
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from core.configuration import provider_require
from integrations.http import ApiClient, ProviderError, json_or_error

from .token import REFRESH_MARGIN, access_token_discard, access_token_get


class ShopwareError(ProviderError):
    provider = "shopware"

    @property
    def is_duplicate(self) -> bool:
        return self.status == 500 and "1062 Duplicate entry" in self.body


@dataclass
class IndividualCode:
    id: str
    code: str
    promotion_id: str


class ShopwareClient(ApiClient):
    error_class = ShopwareError

    def __init__(self, *, base_url: str, client_id: str, client_secret: str, **kwargs):
        super().__init__(base_url=base_url, **kwargs)
        self._client_id, self._client_secret = client_id, client_secret
        self._token: str = ""
        self._token_expires: datetime | None = None
        self._token_lock = threading.Lock()
        self.token_fetches = 0  # tokens this client fetched (others may have been fetched by other workers)
        self.token_key = f"shopware {client_id} {self.base_url}"[:255]

    @classmethod
    def from_settings(cls) -> "ShopwareClient":
        provider_require("Shopware")
        return cls(
            base_url=settings.SHOPWARE_BASE_URL,
            client_id=settings.SHOPWARE_CLIENT_ID,
            client_secret=settings.SHOPWARE_CLIENT_SECRET,
        )

    def prepare(self, call: str) -> None:
        if call == "oauth.token":
            return
        with self._token_lock:
            if not self._token or self._token_expires is None or timezone.now() >= self._token_expires - REFRESH_MARGIN:
                self._token, self._token_expires = access_token_get(key=self.token_key, fetch=self._fetch_token)
        self.session.headers["Authorization"] = f"Bearer {self._token}"

    def _fetch_token(self) -> tuple[str, int]:
        response = self.request(
            "oauth.token",
            "POST",
            "/api/oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            },
            idempotent=True,
        )
        data = json_or_error(response, ShopwareError, "oauth.token")
        self.token_fetches += 1
        return data["access_token"], int(data.get("expires_in") or 600)

    def request(self, call, method, path, **kwargs):
        try:
            return super().request(call, method, path, **kwargs)
        except ShopwareError as exc:
            if exc.status != 401 or call == "oauth.token":
                raise
            # Revoked or expired early: one fresh token, one more try.
            with self._token_lock:
                access_token_discard(key=self.token_key, token=self._token)
                self._token = ""
            return super().request(call, method, path, **kwargs)

    def individual_code_create(self, *, id: str, promotion_id: str, code: str) -> None:
        """Not retried here: a 5xx or a lost answer may have created it; the caller checks with
        individual_code_get before trying again. A duplicate raises ShopwareError with is_duplicate."""
        self.request(
            "promotion-individual-code.create",
            "POST",
            "/api/promotion-individual-code",
            json={"id": id, "promotionId": promotion_id, "code": code},
        )

    def individual_code_get(self, id: str) -> IndividualCode | None:
        try:
            response = self.request("promotion-individual-code.get", "GET", f"/api/promotion-individual-code/{id}")
        except ShopwareError as exc:
            if exc.status == 404:
                return None
            raise
        data = json_or_error(response, ShopwareError, "promotion-individual-code.get").get("data") or {}
        attributes = data.get("attributes") or data  # JSON:API or plain JSON, depending on the Accept header
        return IndividualCode(id=data.get("id") or id, code=attributes["code"], promotion_id=attributes["promotionId"])
