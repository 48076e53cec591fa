"""Privacy: what may leave the machine, and in which form (scrubbing of every string value)."""
