"""The staff dashboard's pages under /staff/live/ (its streams are the ASGI server's)."""

from django.urls import path

from . import views

app_name = "live_dashboard"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("figures.json", views.figures, name="figures"),
]
