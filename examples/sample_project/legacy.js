// Price formatting used by the old storefront widget.
function formatPrice(cents, currency) {
  var symbol = currency == "EUR" ? "€" : "$";
  return symbol + (cents / 100).toFixed(2);
}

module.exports = { formatPrice: formatPrice };
