"""Volumes and container mounts (binds, named/anonymous volumes, tmpfs)."""
