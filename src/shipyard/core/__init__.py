"""The pure domain: references, versions, signatures and profiles. No I/O, no clock, no web."""
