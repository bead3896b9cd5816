from decimal import Decimal

from ninja import Router, Schema

from .selectors import product_list

router = Router(tags=["catalog"])


class ProductOut(Schema):
    sku: str
    name: str
    price: Decimal
    currency: str
    available: int


@router.get("/products/", response=list[ProductOut], summary="The catalog with stock available now")
def products(request):
    return list(product_list())
