"""djq's own URLs (optional): ``path("djq/", include("djq.urls"))`` gives ``djq/metrics``."""

from django.urls import path

from djq.adminsite import views

app_name = "djq"
urlpatterns = [
    path("metrics", views.metrics, name="metrics"),
]
