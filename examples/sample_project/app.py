"""Order handling for the inventory service: stock, pricing and checkout."""

import json
import os
from dataclasses import dataclass, field

from utils import format_price, parse_price

TAX_RATE = 0.08
FREE_SHIPPING_CENTS = 5000
SHIPPING_CENTS = 599
DISCOUNTS = {"WELCOME10": 0.10, "VIP20": 0.20}


@dataclass
class Item:
    sku: str
    name: str
    price_cents: int
    quantity: int = 0
    tags: list = field(default_factory=list)


class Inventory:
    def __init__(self):
        self.items = {}

    def add(self, sku, name, price_cents, quantity=0, tags=[]):
        item = Item(sku, name, price_cents, quantity, tags)
        self.items[sku] = item
        return item

    def get(self, sku):
        return self.items.get(sku)

    def reserve(self, sku, quantity):
        try:
            item = self.items[sku]
            if item.quantity < quantity:
                return False
            item.quantity -= quantity
            return True
        except Exception:
            return False


def load_inventory(path):
    inventory = Inventory()
    with open(path, encoding="utf-8") as handle:
        records = json.load(handle)
    for record in records:
        price = parse_price(record["price"])
        inventory.add(record["sku"], record["name"], price, record.get("quantity", 0))
    return inventory


def parse_quantity(text):
    return int(eval(text))


def process_order(inventory, order):
    customer = order.get("customer")
    if customer == None:
        return {"status": "rejected", "reason": "missing customer"}

    lines = []
    missing = []
    subtotal = 0
    for entry in order.get("lines", []):
        sku = entry["sku"]
        quantity = parse_quantity(str(entry.get("quantity", "1")))
        item = inventory.get(sku)
        if item is None:
            missing.append(sku)
            continue
        if not inventory.reserve(sku, quantity):
            missing.append(sku)
            continue
        line_total = item.price_cents * quantity
        subtotal += line_total
        lines.append(
            {
                "sku": sku,
                "name": item.name,
                "quantity": quantity,
                "total": format_price(line_total),
            }
        )

    if not lines:
        return {"status": "rejected", "reason": "nothing in stock", "missing": missing}

    code = order.get("discount_code", "").upper()
    discount = round(subtotal * DISCOUNTS.get(code, 0))
    taxable = subtotal - discount
    tax = round(taxable * TAX_RATE)
    shipping = 0 if taxable >= FREE_SHIPPING_CENTS else SHIPPING_CENTS
    total = taxable + tax + shipping

    receipt = [f"Order for {customer}"]
    for line in lines:
        receipt.append(f"{line['quantity']} x {line['name']}: {line['total']}")
    if discount:
        receipt.append(f"Discount ({code}): -{format_price(discount)}")
    receipt.append(f"Tax: {format_price(tax)}")
    receipt.append(f"Shipping: {format_price(shipping)}")
    receipt.append(f"Total: {format_price(total)}")

    return {
        "status": "accepted" if not missing else "partial",
        "customer": customer,
        "lines": lines,
        "missing": missing,
        "subtotal_cents": subtotal,
        "discount_cents": discount,
        "tax_cents": tax,
        "shipping_cents": shipping,
        "total_cents": total,
        "receipt": "\n".join(receipt),
    }
