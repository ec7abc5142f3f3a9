//! offset-tracker
