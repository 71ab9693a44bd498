"""A Standard Webhooks receiver on 127.0.0.1 (the provisioning panel's side), verifying with the reference library."""

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from devtools.fakes.server import FakeRequest, FakeResponse, FakeServer, route


class FakeWebhookReceiver(FakeServer):
    name = "webhook-receiver"
    secret = ""  # set to the endpoint's whsec_ secret

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.accepted: list[dict] = []  # verified payloads, in the order they arrived

    @route("POST", "/hooks")
    def hooks(self, request: FakeRequest):
        try:
            payload = Webhook(self.secret).verify(request.body, request.headers)
        except WebhookVerificationError as exc:
            return FakeResponse(400, {"error": str(exc)})
        self.accepted.append(payload)
        return FakeResponse(204)

    @route("POST", "/moved")
    def moved(self, request: FakeRequest):
        return FakeResponse(302, headers={"Location": "/hooks"})
