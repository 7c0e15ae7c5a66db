"""A whole cluster across network namespaces (needs root and ``ip netns``)."""
