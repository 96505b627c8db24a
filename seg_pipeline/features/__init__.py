"""Customer features, review NLP and lifetime value: daily feature tables built on staging."""
