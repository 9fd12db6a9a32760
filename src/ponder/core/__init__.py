"""Core types shared by every layer: messages, events, usage, errors."""
