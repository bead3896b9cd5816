from django.urls import path

from . import views

app_name = "orders"

urlpatterns = [
    path("", views.storefront, name="storefront"),
    path("orders/<uuid:order_id>/", views.order_detail, name="detail"),
    path("staff/stuck-orders/", views.stuck_orders, name="stuck"),
]
