from __future__ import annotations

from django.urls import path

from reports import views

urlpatterns = [
    path("health", views.health, name="health"),
    path("reports", views.submit, name="submit"),
    path("reports/<str:job_id>", views.show, name="show"),
    path("slow", views.slow, name="slow"),
]
