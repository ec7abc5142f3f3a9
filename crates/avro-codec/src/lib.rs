//! avro-codec
