#![doc = include_str!("../README.md")]

pub mod check;
pub mod http;
pub mod metrics;
pub mod ops;
pub mod probe;
pub mod reload;
pub mod settings;
pub mod startup;
