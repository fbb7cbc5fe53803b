"""The query string: only the parameters an operation knows, each once (SPEC §9: strict input)."""
from __future__ import annotations

from django.http import HttpRequest

from ..ranges import InvalidInput


def known_query(request: HttpRequest, *allowed: str) -> None:
    errors = {name: "is not a known query parameter" for name in request.GET if name not in allowed}
    errors.update({name: "must be given once" for name in request.GET if len(request.GET.getlist(name)) > 1})
    if errors:
        raise InvalidInput(errors)
