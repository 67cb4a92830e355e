"""Backups of a daemon cluster: take, verify (in a scratch node), keep, restore."""
