"""Model backends: one `ChatModel` interface, many wire dialects, one embedded offline model."""
