//! kafka-adapters
