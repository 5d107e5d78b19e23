"""The solver: grammar tables on the device, edits on token arrays, search."""
