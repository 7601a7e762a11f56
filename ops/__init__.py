"""Operating the product: starting and stopping its three processes (standard library only)."""
