from decimal import Decimal

from django.core.management.base import BaseCommand

from inventory import services
from inventory.models import Product

DEMO_CATALOG = [
    ("MUG-001", "Stoneware mug", "12.50", 40),
    ("TEE-002", "Organic cotton T-shirt", "24.00", 25),
    ("BAG-003", "Canvas tote bag", "18.90", 30),
    ("CAP-004", "Embroidered cap", "21.00", 15),
    ("PEN-005", "Brass pen", "34.00", 10),
    ("NB-006", "Dot-grid notebook", "9.80", 60),
]


class Command(BaseCommand):
    help = "Create the demo catalog with stock (products that exist are left as they are)."

    def handle(self, *args, **options):
        created = 0
        for sku, name, price, on_hand in DEMO_CATALOG:
            if Product.objects.filter(sku=sku).exists():
                continue
            services.product_save(sku=sku, name=name, price=Decimal(price), on_hand=on_hand)
            created += 1
        self.stdout.write(
            f"Catalog: {created} products created, {len(DEMO_CATALOG) - created} kept."
        )
