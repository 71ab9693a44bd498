"""A fake Shopware 6 Admin API on 127.0.0.1: client-credentials tokens and a promotion's individual codes.

    with FakeShopware() as shopware:
        shopware.token_ttl = 600                 # seconds a token lives (expires_in)
        shopware.token_count                     # tokens issued so far
        shopware.advance(600)                    # the fake's clock moves on: tokens older than their ttl expire
        shopware.add_code("VIP-X", promotion_id=OTHER_PROMOTION_ID)   # a code someone made in another promotion
        shopware.fail_creates_next(503)          # the next code create fails and creates nothing
        shopware.lose_next_answer()              # the next code create is applied, then the connection drops
        shopware.codes                           # id -> {"id", "code", "promotionId"}

Traps kept (docs/providers.md): codes are unique across all promotions, and a duplicate code or id answers HTTP 500
with "1062 Duplicate entry" in `errors[0].detail`; a token lives `expires_in` (600) seconds, then answers 401;
`add-individual` answers 204 without saying which codes it made.
"""

import itertools
import secrets
import time
from typing import Any

from devtools.fakes.server import FakeRequest, FakeResponse, FakeServer, route

CLIENT_ID, CLIENT_SECRET = "SWIAFAKECLIENTID", "fake-client-secret"
PROMOTION_ID = "0190a1b2c3d4e5f60718293a4b5c6d7e"
OTHER_PROMOTION_ID = "0190a1b2c3d4e5f60718293a4b5c6d7f"  # another campaign's promotion in the same shop


class FakeShopware(FakeServer):
    name = "shopware"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.token_ttl = 600
        self.tokens: dict[str, float] = {}  # token -> expiry (the fake's clock)
        self.token_count = 0
        self.clock_offset = 0.0
        self.codes: dict[str, dict] = {}
        self.promotions = {PROMOTION_ID}
        self._lose_answers = 0
        self._create_failures: list[int] = []
        self._seq = itertools.count(1)

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.tokens.clear()
            self.token_count = 0
            self.clock_offset = 0.0
            self.codes.clear()
            self.promotions = {PROMOTION_ID}
            self._lose_answers = 0
            self._create_failures.clear()
            self.token_ttl = 600

    def now(self) -> float:
        return time.monotonic() + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Time passes for the fake (no sleeping in tests): tokens issued more than their ttl ago expire."""
        with self.lock:
            self.clock_offset += seconds

    def add_code(self, code: str, *, promotion_id: str = OTHER_PROMOTION_ID) -> str:
        code_id = secrets.token_hex(16)
        with self.lock:
            self.promotions.add(promotion_id)
            self.codes[code_id] = {"id": code_id, "code": code, "promotionId": promotion_id}
        return code_id

    def lose_next_answer(self, times: int = 1) -> None:
        """The next code creates are applied, then the connection closes without an answer (an unknown outcome)."""
        with self.lock:
            self._lose_answers += times

    def fail_creates_next(self, status: int = 503, *, times: int = 1) -> None:
        """The next code creates answer `status` and create nothing (token calls are not affected)."""
        with self.lock:
            self._create_failures.extend([status] * times)

    def error_body(self, status: int) -> Any:
        return {"errors": [{"code": "0", "status": str(status), "title": "Injected", "detail": f"Injected {status}"}]}

    def _handle(self, request: FakeRequest) -> FakeResponse | None:
        if request.path != "/api/oauth/token":
            token = request.header("authorization").removeprefix("Bearer ")
            with self.lock:
                expires = self.tokens.get(token)
            if expires is None or expires <= self.now():
                status = {"status": "401", "title": "Unauthorized", "detail": "Access token is invalid or expired"}
                return FakeResponse(401, {"errors": [{"code": "9", **status}]})
        response = super()._handle(request)
        if request.method == "POST" and request.path == "/api/promotion-individual-code":
            with self.lock:
                if self._lose_answers and response is not None and response.status < 300:
                    self._lose_answers -= 1
                    return None
        return response

    @route("POST", r"/api/oauth/token")
    def token(self, request: FakeRequest):
        payload = request.json() or {}
        if (
            payload.get("grant_type") != "client_credentials"
            or payload.get("client_id") != CLIENT_ID
            or payload.get("client_secret") != CLIENT_SECRET
        ):
            return FakeResponse(401, {"errors": [{"code": "10", "status": "401", "title": "Unauthorized"}]})
        token = secrets.token_hex(16)
        with self.lock:
            self.tokens[token] = self.now() + self.token_ttl
            self.token_count += 1
        return {"token_type": "Bearer", "expires_in": self.token_ttl, "access_token": token}

    @route("POST", r"/api/promotion-individual-code")
    def code_create(self, request: FakeRequest):
        payload = request.json() or {}
        code_id, code, promotion_id = payload.get("id"), payload.get("code"), payload.get("promotionId")
        with self.lock:
            if self._create_failures:
                return FakeResponse(self._create_failures.pop(0), self.error_body(503))
            if promotion_id not in self.promotions:
                return FakeResponse(400, self.error_body(400))
            if code_id in self.codes or any(c["code"] == code for c in self.codes.values()):
                key = "code" if any(c["code"] == code for c in self.codes.values()) else "PRIMARY"
                detail = (
                    "An exception occurred while executing a query: SQLSTATE[23000]: Integrity constraint violation: "
                    f"1062 Duplicate entry '{code}' for key 'promotion_individual_code.{key}'"
                )
                return FakeResponse(
                    500,
                    {"errors": [{"code": "0", "status": "500", "title": "Internal Server Error", "detail": detail}]},
                )
            self.codes[code_id] = {"id": code_id, "code": code, "promotionId": promotion_id}
        return FakeResponse(204)

    @route("GET", r"/api/promotion-individual-code/(?P<code_id>[0-9a-f]{32})")
    def code_get(self, request: FakeRequest):
        with self.lock:
            found = self.codes.get(request.params["code_id"])
        if found is None:
            return FakeResponse(404, {"errors": [{"code": "FRAMEWORK__ENTITY_NOT_FOUND", "status": "404"}]})
        return {"data": dict(found)}

    @route("POST", r"/api/_action/promotion/codes/add-individual")
    def add_individual(self, request: FakeRequest):
        # The trap: codes are made, but the answer does not say which.
        payload = request.json() or {}
        with self.lock:
            for _ in range(int(payload.get("codeAmount") or 1)):
                code_id = secrets.token_hex(16)
                code = f"{payload.get('codePattern', 'X')}-{next(self._seq)}"
                self.codes[code_id] = {"id": code_id, "code": code, "promotionId": payload.get("promotionId")}
        return FakeResponse(204)
