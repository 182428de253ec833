"""The JSON error answers of the HTTP service: {"error": CODE, "detail": MESSAGE}."""

from __future__ import annotations

from fastapi.responses import JSONResponse


class ApiError(Exception):
    """Answered as JSON {"error": code, "detail": detail} with the given status."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers or {}


def error_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status, headers=headers)
