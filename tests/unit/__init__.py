"""Unit tests: no lab, no network; inventories are copied to temporary directories."""
