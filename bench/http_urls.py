"""URLs of the bench's HTTP site (bench/http_site.py): calcache's, and a trivial view to
measure the availability API against (the same stack, session and login, no work)."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path

from bench.http_bench import TRIVIAL_PATH


def ok(request: HttpRequest) -> HttpResponse:
    """``{"ok": true}`` for a signed-in user; 401 like the availability API otherwise."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Authentication required."}, status=401)
    return JsonResponse({"ok": True})


urlpatterns = [
    path(TRIVIAL_PATH.strip("/") + "/", ok),
    path("calendar-cache/", include("calcache.urls")),
]
