from app import Inventory, process_order
from utils import format_price, parse_price


def make_inventory():
    inventory = Inventory()
    inventory.add("W-1", "Widget", 1250, quantity=10)
    inventory.add("G-2", "Gadget", 4000, quantity=1)
    return inventory


def test_parse_price_reads_dollar_amounts():
    assert parse_price("$12.50") == 1250
    assert format_price(1250) == "USD 12.50"


def test_reserve_takes_stock():
    inventory = make_inventory()
    assert inventory.reserve("W-1", 4)
    assert inventory.get("W-1").quantity == 6
    assert not inventory.reserve("G-2", 2)


def test_process_order_totals_and_receipt():
    inventory = make_inventory()
    order = {
        "customer": "ada@example.com",
        "lines": [{"sku": "W-1", "quantity": "2"}, {"sku": "X-9", "quantity": "1"}],
        "discount_code": "welcome10",
    }
    result = process_order(inventory, order)
    assert result["status"] == "partial"
    assert result["missing"] == ["X-9"]
    assert result["subtotal_cents"] == 2500
    assert result["discount_cents"] == 250
    assert result["total_cents"] == 2250 + 180 + 599
    assert "Total: USD 30.29" in result["receipt"]


def test_process_order_needs_a_customer():
    result = process_order(make_inventory(), {"lines": []})
    assert result == {"status": "rejected", "reason": "missing customer"}
