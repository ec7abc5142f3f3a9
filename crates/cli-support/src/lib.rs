#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod args;
mod broker;
mod clock;
mod process;
mod report;

pub use args::{
    parse_property, schema_registry_url, translate_prototype_flags, validate_bootstrap,
};
pub use broker::missing_topics;
pub use clock::now_ms;
pub use process::{LogFormat, block_on_stoppable, init_logging, log_filter, start_runtime};
pub use report::one_line;
