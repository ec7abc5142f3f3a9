#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod args;
mod broker;
mod clock;
mod process;
mod report;
mod secrets;

pub use args::{
    parse_property, schema_registry_url, translate_prototype_flags, validate_bootstrap,
};
pub use broker::missing_topics;
pub use clock::now_ms;
pub use process::{
    EXIT_BAD_FLAGS, EXIT_UNUSABLE, LogFormat, block_on_stoppable, init_logging, log_filter,
    run_tool, start_runtime,
};
pub use report::one_line;
pub use secrets::{read_properties_file, shown_property};
