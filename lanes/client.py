"""An HTTP client of the bot API for bots in another process, standard library only.

    client = MartingaleClient("http://localhost:8000", token)
    trade = client.request_trade("worker1", "EURUSD")      # stake in trade["amount"]
    client.wait_until_open(trade["trade_id"], timeout=60)   # when it was queued
    client.report_result(trade["trade_id"], "loss")

Connection errors, timeouts and 5xx answers are retried with exponential backoff. That is safe:
every trade request carries a ``trade_id`` (generated here when the caller gives none, so all
attempts send the same one), and results, cancels, settings and reads are idempotent on the
server. A 4xx answer is never retried. Error answers raise ``ApiError``. Money goes out as
strings (pass ``Decimal``, ``int`` or ``str``; floats are refused as inexact) and comes back as
strings with two places.

This module imports nothing from Django, so a bot may copy it alone.
"""
from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from decimal import Decimal
from typing import Any, Optional

API_PREFIX = "/api/v1"
MAX_RETRY_AFTER_SECONDS = 60


class ApiError(Exception):
    """An error answer of the API, or (``status`` None, code ``unreachable``) no answer at all."""

    def __init__(
        self,
        status: Optional[int],
        code: str,
        message: str,
        fields: Optional[dict] = None,
        retry_after: Optional[float] = None,
    ):
        super().__init__(f"{status or 'no answer'} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.retry_after = retry_after


class _Retryable(Exception):
    def __init__(self, error: ApiError, *, sent: bool):
        super().__init__(str(error))
        self.error = error
        self.sent = sent  # False: the request surely never reached the server


def new_trade_id() -> str:
    return uuid.uuid4().hex


def _money(value: Any, name: str) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, (bool, float)):
        raise TypeError(f"{name} must be a Decimal, int or str, not {type(value).__name__} (floats are not exact money)")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (int, str)):
        return str(value)
    raise TypeError(f"{name} must be a Decimal, int or str, not {type(value).__name__}")


def _retry_after(header: Optional[str], error: Any) -> Optional[float]:
    if isinstance(error, dict) and isinstance(error.get("retry_after"), (int, float)):
        return float(error["retry_after"])
    try:
        return float(header) if header else None
    except ValueError:
        return None


class MartingaleClient:
    def __init__(self, base_url: str, token: str, *, timeout: float = 10, retries: int = 3, backoff: float = 0.5):
        base = base_url.rstrip("/")
        self.base_url = base if base.endswith(API_PREFIX) else base + API_PREFIX
        self.token = token
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff

    # --- Trades ---------------------------------------------------------------------------------

    def request_trade(
        self,
        account: str,
        symbol: str,
        *,
        trade_id: Optional[str] = None,
        direction: Optional[str] = None,
        expected_payout: Any = None,
        max_wait_seconds: Optional[int] = None,
    ) -> dict:
        """Ask for a stake. The answer is the trade: open (``amount``, ``kind``, ``level``) or queued
        (``queue_position``). A repeat of the same ``trade_id`` answers the same trade."""
        body: dict[str, Any] = {"account": account, "symbol": symbol, "trade_id": trade_id or new_trade_id()}
        if direction is not None:
            body["direction"] = direction
        if expected_payout is not None:
            body["expected_payout"] = _money(expected_payout, "expected_payout")
        if max_wait_seconds is not None:
            body["max_wait_seconds"] = max_wait_seconds
        return self._call("POST", "/trades", body)

    def report_result(self, trade_id: str, result: str, payout: Any = None) -> dict:
        """Report ``win``, ``loss`` or ``draw``; the answer is the trade with its ``lane`` (or None)."""
        body: dict[str, Any] = {"result": result}
        if payout is not None:
            body["payout"] = _money(payout, "payout")
        return self._call("POST", f"/trades/{_segment(trade_id)}/result", body)

    def cancel(self, trade_id: str) -> dict:
        return self._call("POST", f"/trades/{_segment(trade_id)}/cancel", {})

    def trade(self, trade_id: str) -> dict:
        return self._call("GET", f"/trades/{_segment(trade_id)}")

    def wait_until_open(self, trade_id: str, timeout: float, *, interval: float = 0.5) -> dict:
        """Poll a queued trade until it leaves the queue; answers the trade (open, or expired or
        cancelled: check ``status``). Raises ``TimeoutError`` if it is still queued after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            trade = self.trade(trade_id)
            if trade["status"] != "queued":
                return trade
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"trade {trade_id} is still queued (position {trade['queue_position']})")
            time.sleep(min(interval, left))

    # --- Lanes, accounts, service ---------------------------------------------------------------

    def lanes(self, account: Optional[str] = None, status: Optional[str] = None, *, page_size: int = 500) -> list[dict]:
        """Every lane (oldest first), following the list's pages."""
        query = {name: value for name, value in (("account", account), ("status", status)) if value is not None}
        lanes: list[dict] = []
        cursor = None
        while True:
            page = self._call("GET", "/lanes", query={**query, "limit": page_size, **({"cursor": cursor} if cursor else {})})
            lanes += page["lanes"]
            cursor = page["next"]
            if cursor is None:
                return lanes

    def lane(self, lane_id: str) -> dict:
        return self._call("GET", f"/lanes/{_segment(lane_id)}")

    def complete_lane(self, lane_id: str, status: str = "completed") -> dict:
        # Not idempotent: a retry after a lost answer would be refused as already finished.
        return self._call("POST", f"/lanes/{_segment(lane_id)}/complete", {"status": status}, idempotent=False)

    def status(self, account: Optional[str] = None) -> dict:
        return self._call("GET", f"/accounts/{_segment(account)}/status" if account else "/status")

    def account(self, account: str) -> dict:
        return self._call("GET", f"/accounts/{_segment(account)}")

    def update_account(self, account: str, *, complete_active_lanes: bool = False, **values: Any) -> dict:
        """Change the account's own fields; the answer's ``warnings`` say what the change leaves behind."""
        body = {**values, **({"complete_active_lanes": True} if complete_active_lanes else {})}
        return self._call("PATCH", f"/accounts/{_segment(account)}", body)

    def settings(self, account: str) -> dict:
        return self._call("GET", f"/accounts/{_segment(account)}/settings")

    def update_settings(self, account: str, **values: Any) -> dict:
        return self._call("PATCH", f"/accounts/{_segment(account)}/settings", values)

    def stats(self, account: Optional[str] = None, days: int = 7) -> dict:
        path = f"/accounts/{_segment(account)}/stats" if account else "/stats"
        return self._call("GET", path, query={"days": days})

    def locks(self, account: str) -> list[dict]:
        """The account's locks, active first (SPEC §11)."""
        return self._call("GET", f"/accounts/{_segment(account)}/locks")["locks"]

    def lock(self, account: str, minutes: int, note: Optional[str] = None) -> dict:
        """Pause the account by hand: trade requests answer 409 account_locked until it ends."""
        body = {"minutes": minutes, **({"note": note} if note is not None else {})}
        # Not idempotent: a retry after a lost answer would set a second lock.
        return self._call("POST", f"/accounts/{_segment(account)}/locks", body, idempotent=False)

    def release_lock(self, lock_id: str) -> dict:
        """End a lock at once; releasing one already ended answers it as it is."""
        return self._call("POST", f"/locks/{_segment(lock_id)}/release")

    def health(self) -> dict:
        """The health document; a 503 (database down) answers the document too, not an ApiError."""
        return self._call("GET", "/health", document_statuses=(503,))

    # --- HTTP -----------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: Optional[dict] = None,
        *,
        query: Optional[dict] = None,
        idempotent: bool = True,
        document_statuses: tuple[int, ...] = (),
    ) -> Any:
        url = self.base_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        attempt = 0
        while True:
            try:
                return self._once(method, url, data, document_statuses)
            except _Retryable as failure:
                if attempt >= self.retries or (failure.sent and not idempotent):
                    raise failure.error from None
                delay = self.backoff * 2**attempt
                if failure.error.retry_after is not None:
                    delay = max(delay, min(failure.error.retry_after, MAX_RETRY_AFTER_SECONDS))
                time.sleep(delay)
                attempt += 1

    def _once(self, method: str, url: str, data: Optional[bytes], document_statuses: tuple[int, ...]) -> Any:
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", "martingale-client/1")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return _decode(response.status, response.read())
        except urllib.error.HTTPError as answer:
            with answer:
                raw = answer.read()
            if answer.code in document_statuses:
                return _decode(answer.code, raw)
            error = _error(answer.code, raw, answer.headers.get("Retry-After"))
            if answer.code >= 500:
                raise _Retryable(error, sent=True) from None
            raise error from None
        except urllib.error.URLError as exc:
            refused = isinstance(exc.reason, ConnectionRefusedError)
            raise _Retryable(ApiError(None, "unreachable", f"{url}: {exc.reason}"), sent=not refused) from None
        except (http.client.HTTPException, OSError) as exc:  # timeouts, resets, broken answers
            raise _Retryable(ApiError(None, "unreachable", f"{url}: {exc!r}"), sent=True) from None


def _segment(value: Optional[str]) -> str:
    return urllib.parse.quote(str(value), safe="")


def _decode(status: int, raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        raise ApiError(status, "invalid_response", "the server's answer is not JSON") from None


def _error(status: int, raw: bytes, retry_after_header: Optional[str]) -> ApiError:
    try:
        error = json.loads(raw or b"null").get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, dict):
        return ApiError(status, f"http_{status}", raw[:200].decode("utf-8", "replace") or f"HTTP {status}",
                        retry_after=_retry_after(retry_after_header, None))
    return ApiError(
        status,
        str(error.get("code") or f"http_{status}"),
        str(error.get("message") or ""),
        fields=error.get("fields") if isinstance(error.get("fields"), dict) else None,
        retry_after=_retry_after(retry_after_header, error),
    )
