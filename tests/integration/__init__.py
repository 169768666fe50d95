"""Tests on one database, with several connections where they need them."""
