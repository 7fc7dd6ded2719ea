from django.urls import include, path

urlpatterns = [path("scheduling/cache/", include("calcache.urls"))]
