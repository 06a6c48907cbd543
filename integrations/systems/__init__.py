"""Clients for the external systems. Plain Python: no Django models are imported here."""
