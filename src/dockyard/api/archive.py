"""Container filesystem routes (docker cp, diff, export, commit): filled in below."""
