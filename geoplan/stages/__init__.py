"""Pure computation stages (frame in, frame out)."""
