"""Console pages outside the admin's model pages (the header search)."""
