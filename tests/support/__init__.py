"""Shared helpers for Triggerfish's tests."""
