"""Management commands of the lanes app."""
