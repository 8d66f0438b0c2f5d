"""State backends behind one `StateStore` protocol (DESIGN §9)."""
