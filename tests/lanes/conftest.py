"""Fixtures shared by the API tests."""
import json

import pytest


@pytest.fixture
def bearer_api(client):
    """A factory: given a raw token, a `call(method, path, body=None) -> (status, json)` on /api/v1."""

    def make(raw_token):
        def call(method, path, body=None):
            data = json.dumps(body) if body is not None else ""
            response = client.generic(
                method, "/api/v1" + path, data, content_type="application/json",
                headers={"Authorization": f"Bearer {raw_token}"},
            )
            return response.status_code, response.json()

        return call

    return make
